import { expect, test } from "@playwright/test";
import { startNode, stopAllNodes, type NodeProcess } from "../support/node";

let node: NodeProcess;

test.beforeAll(async () => {
  // local mode, no SMTP: the link is read from the development mailbox page, as a developer would
  node = await startNode();
});
test.afterAll(stopAllNodes);

test("a person signs in with an email link from the outbox, sees the account, and signs out", async ({ page }) => {
  const blocked: string[] = [];
  page.on(
    "console",
    (m) => m.type() === "error" && /Content Security Policy/i.test(m.text()) && blocked.push(m.text()),
  );
  await page.goto(`${node.url}/account`);
  // not signed in: sent to the login page, which remembers where to return
  await expect(page).toHaveURL(/\/login\?redirectTo=%2Faccount/);

  await page.getByLabel("Email address").fill("not-an-email");
  await page.getByRole("button", { name: "Email me a sign-in link" }).click();
  await expect(page.getByRole("alert")).toContainText("does not look like an email address");

  await page.getByLabel("Email address").fill("Grace@Example.com");
  await page.getByRole("button", { name: "Email me a sign-in link" }).click();
  await expect(page.getByRole("heading", { name: "Check your email" })).toBeVisible();
  await expect(page.getByText("grace@example.com")).toBeVisible();

  await page.getByRole("link", { name: "development mailbox" }).click();
  await expect(page.getByTestId("mail").first()).toContainText("To grace@example.com");
  await page.getByTestId("mail-link").first().click();

  await expect(page.getByRole("heading", { name: "Sign in as grace@example.com?" })).toBeVisible();
  await page.getByRole("button", { name: "Sign in as grace@example.com" }).click();

  await expect(page).toHaveURL(/\/account$/);
  await expect(page.getByTestId("account-email")).toHaveText("grace@example.com");
  await expect(page.getByTestId("account-id")).toHaveText(/^[0-9a-f-]{36}$/);
  await expect(page.getByTestId("session-row")).toHaveCount(1);
  await expect(page.getByText("This device")).toBeVisible();

  // the session cookie is HttpOnly: page scripts cannot read it, nor is the token stored anywhere
  expect(await page.evaluate(() => document.cookie)).not.toContain("pwdless_session");
  const stored = await page.evaluate(() => JSON.stringify(localStorage) + JSON.stringify(sessionStorage));
  expect(stored).not.toContain("eyJ"); // no JWT (base64url of '{"') in web storage

  await page.getByRole("button", { name: "Sign out", exact: true }).click();
  await expect(page.getByText("You are signed out.")).toBeVisible();
  await page.goto(`${node.url}/account`);
  await expect(page).toHaveURL(/\/login/);
  // the app ran under its Content-Security-Policy without tripping it
  expect(blocked).toEqual([]);
});

test("a link opened in another browser explains what to do and can send a new one there", async ({ page, browser }) => {
  await page.goto(`${node.url}/login`);
  await page.getByLabel("Email address").fill("elsewhere@example.com");
  await page.getByRole("button", { name: "Email me a sign-in link" }).click();
  await expect(page.getByRole("heading", { name: "Check your email" })).toBeVisible();

  const { messages } = (await (await fetch(`${node.url}/dev/mailbox.json`)).json()) as {
    messages: { to: string; text: string }[];
  };
  const link = /http:\/\/\S+/.exec(messages.find((m) => m.to === "elsewhere@example.com")!.text)![0];

  const other = await browser.newContext();
  const otherPage = await other.newPage();
  await otherPage.goto(link);
  await expect(
    otherPage.getByRole("heading", { name: "Open the link in the browser where you asked for it" }),
  ).toBeVisible();
  await otherPage.getByRole("button", { name: "Send a new link to elsewhere@example.com" }).click();
  await expect(otherPage.getByRole("heading", { name: "Check your email" })).toBeVisible();
  await other.close();
});
