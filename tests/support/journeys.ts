// Journeys a person takes through several nodes in Chromium, shared by the gossip and Redis specs.
import { expect, type Page } from "@playwright/test";
import type { NodeProcess } from "./node";

/**
 * Ask for a link on A, open it from B's mailbox on B, find the same account on C, sign out on C,
 * then show A the old cookie again, as a thief with a copy would: A refuses it.
 */
export async function linkAcrossNodes(page: Page, [a, b, c]: NodeProcess[], email: string): Promise<void> {
  await page.goto(`${a!.url}/login`);
  await page.getByLabel("Email address").fill(email);
  await page.getByRole("button", { name: "Email me a sign-in link" }).click();
  await expect(page.getByRole("heading", { name: "Check your email" })).toBeVisible();

  // B's mailbox shows the cluster's mail; open the link on B itself
  await page.goto(`${b!.url}/dev/mailbox`);
  const mail = page.getByTestId("mail").filter({ hasText: `To ${email}` });
  await expect(mail).toHaveCount(1);
  await mail.getByTestId("mail-link-here").click();
  await expect(page).toHaveURL(new RegExp(`^${b!.url}/auth/email/callback`));
  await page.getByRole("button", { name: `Sign in as ${email}` }).click();
  await expect(page).toHaveURL(`${b!.url}/account`);
  await expect(page.getByTestId("account-email")).toHaveText(email);
  const id = await page.getByTestId("account-id").textContent();

  // cookies are per host, not per port: the same browser is signed in on C
  await page.goto(`${c!.url}/account`);
  await expect(page.getByTestId("account-email")).toHaveText(email);
  await expect(page.getByTestId("account-id")).toHaveText(id!);

  const signedInCookies = await page.context().cookies();
  await page.getByRole("button", { name: "Sign out", exact: true }).click();
  await expect(page.getByText("You are signed out.")).toBeVisible();

  // put the old cookie back: A refuses it, the session is revoked there too
  await page.context().addCookies(signedInCookies.filter((cookie) => cookie.name === "pwdless_session"));
  await page.goto(`${a!.url}/account`);
  await expect(page).toHaveURL(/\/login\?redirectTo=/);
}

export type OutboxMail = { to: string; subject: string; text: string };

/** The development mailbox's mails to an address, newest first (local mode). */
export async function mailsTo(node: NodeProcess, to: string): Promise<OutboxMail[]> {
  const res = await fetch(`${node.url}/dev/mailbox.json?to=${encodeURIComponent(to)}`);
  return ((await res.json()) as { messages: OutboxMail[] }).messages;
}

/** Sign in with the link from the development mailbox, in this page, ending on /account. */
export async function signInWithLink(page: Page, node: NodeProcess, email: string): Promise<void> {
  const before = (await mailsTo(node, email)).length;
  await page.goto(`${node.url}/login`);
  await page.getByLabel("Email address").fill(email);
  await page.getByRole("button", { name: "Email me a sign-in link" }).click();
  await expect(page.getByRole("heading", { name: "Check your email" })).toBeVisible();
  await expect.poll(async () => (await mailsTo(node, email)).length).toBeGreaterThan(before);
  const link = /http:\/\/\S+\/auth\/email\/callback\S+/.exec((await mailsTo(node, email))[0]!.text)![0];
  await page.goto(link);
  await page.getByRole("button", { name: `Sign in as ${email}` }).click();
  await expect(page).toHaveURL(/\/account$/);
}
