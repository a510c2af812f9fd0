import { expect, test } from "@playwright/test";
import { clusterEnv, startClusterNodes, waitForMesh } from "../support/cluster";
import { stopAllNodes, type NodeProcess } from "../support/node";

let a: NodeProcess, b: NodeProcess, c: NodeProcess;

test.beforeAll(async () => {
  [a, b, c] = await startClusterNodes(3, clusterEnv());
  await waitForMesh([a, b, c]);
});
test.afterAll(stopAllNodes);

test("a link requested on A, opened from the mailbox on B, signs in on C too; signing out on C signs out A", async ({
  page,
}) => {
  await page.goto(`${a.url}/login`);
  await page.getByLabel("Email address").fill("roaming@example.com");
  await page.getByRole("button", { name: "Email me a sign-in link" }).click();
  await expect(page.getByRole("heading", { name: "Check your email" })).toBeVisible();

  // B's mailbox shows the cluster's mail; open the link on B itself
  await page.goto(`${b.url}/dev/mailbox`);
  const mail = page.getByTestId("mail").filter({ hasText: "To roaming@example.com" });
  await expect(mail).toHaveCount(1);
  await mail.getByTestId("mail-link-here").click();
  await expect(page).toHaveURL(new RegExp(`^${b.url}/auth/email/callback`));
  await page.getByRole("button", { name: "Sign in as roaming@example.com" }).click();
  await expect(page).toHaveURL(`${b.url}/account`);
  await expect(page.getByTestId("account-email")).toHaveText("roaming@example.com");
  const id = await page.getByTestId("account-id").textContent();

  // cookies are per host, not per port: the same browser is signed in on C
  await page.goto(`${c.url}/account`);
  await expect(page.getByTestId("account-email")).toHaveText("roaming@example.com");
  await expect(page.getByTestId("account-id")).toHaveText(id!);

  const signedInCookies = await page.context().cookies();
  await page.getByRole("button", { name: "Sign out", exact: true }).click();
  await expect(page.getByText("You are signed out.")).toBeVisible();

  // put the old cookie back, as a thief with a copy would: A refuses it, the session is revoked there too
  await page.context().addCookies(signedInCookies.filter((cookie) => cookie.name === "pwdless_session"));
  await page.goto(`${a.url}/account`);
  await expect(page).toHaveURL(/\/login\?redirectTo=/);
});
