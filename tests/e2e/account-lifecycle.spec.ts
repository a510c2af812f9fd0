import { expect, test, type Page } from "@playwright/test";
import { startNode, stopAllNodes, type NodeProcess } from "../support/node";
import { mailsTo as journeyMails, signInWithLink } from "../support/journeys";
import { freePort } from "../support/ports";

let node: NodeProcess;

test.beforeAll(async () => {
  // local mode: mail lands in the development mailbox, as a developer would read it
  node = await startNode();
});
test.afterAll(stopAllNodes);

const mailsTo = (to: string, at = node) => journeyMails(at, to);
const signInAs = (page: Page, email: string, at = node) => signInWithLink(page, at, email);

test("a person changes their address: the link to the new one finishes it, the old one gets a notice and no longer signs in", async ({
  page,
}) => {
  await signInAs(page, "old-address@example.com");
  await expect(page.getByTestId("account-email")).toHaveText("old-address@example.com");
  const id = await page.getByTestId("account-id").textContent();

  await page.getByLabel("New address").fill("new-address@example.com");
  await page.getByRole("button", { name: "Change address" }).click();
  await expect(page.getByText("We sent a link and a code to new-address@example.com")).toBeVisible();

  await expect.poll(async () => (await mailsTo("new-address@example.com")).length).toBe(1);
  const confirm = /http:\/\/\S+\/account\/email\/confirm\?token=\S+/.exec(
    (await mailsTo("new-address@example.com"))[0]!.text,
  )![0];
  await page.goto(confirm);
  await page.getByRole("button", { name: "Use this address" }).click();
  await expect(page).toHaveURL(/\/account\?addressChanged=1$/);
  await expect(page.getByTestId("account-email")).toHaveText("new-address@example.com");
  await expect(page.getByTestId("account-id")).toHaveText(id!);
  // this browser's session stayed
  await expect(page.getByTestId("session-row")).toHaveCount(1);

  // the old address got a notice
  await expect
    .poll(async () => (await mailsTo("old-address@example.com")).map((m) => m.subject))
    .toContainEqual(expect.stringContaining("was changed"));

  // the old address no longer reaches this account: it would be a new, different one
  await page.context().clearCookies();
  await signInAs(page, "old-address@example.com");
  await expect(page.getByTestId("account-id")).not.toHaveText(id!);
  await page.context().clearCookies();
  await signInAs(page, "new-address@example.com");
  await expect(page.getByTestId("account-id")).toHaveText(id!);
});

test("a person deletes their account with a fresh emailed code", async ({ page }) => {
  await signInAs(page, "leaving@example.com");
  await page.getByRole("link", { name: "Delete my account…" }).click();
  await page.getByRole("button", { name: "Email me a code to confirm" }).click();
  await expect.poll(async () => (await mailsTo("leaving@example.com")).length).toBe(2);
  const code = /^\s+([0-9]{6})$/m.exec((await mailsTo("leaving@example.com"))[0]!.text)![1]!;
  await page.getByLabel("Code sent to leaving@example.com").fill(code);
  await page.getByRole("button", { name: "Delete my account" }).click();
  await expect(page.getByText("Your account was deleted.")).toBeVisible();
  await expect
    .poll(async () => (await mailsTo("leaving@example.com")).map((m) => m.subject))
    .toContainEqual(expect.stringContaining("was deleted"));
  await page.goto(`${node.url}/account`);
  await expect(page).toHaveURL(/\/login\?redirectTo=/);
});

test("a person deletes their account with a passkey, which must verify them", async ({ page }) => {
  // WebAuthn refuses IP addresses as relying party ids: this node is reached as localhost
  const port = await freePort();
  const local = await startNode({ port, env: { APP_URL: `http://localhost:${port}` } });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  await signInAs(page, "passkey-leaver@example.com", local);
  await page.getByLabel("Name").fill("Work laptop");
  await page.getByRole("button", { name: "Add a passkey" }).click();
  await expect(page.getByTestId("passkey-row")).toHaveCount(1);

  await page.getByRole("link", { name: "Delete my account…" }).click();
  // the authenticator cannot verify the person (no PIN, no fingerprint): nothing is deleted
  await cdp.send("WebAuthn.setUserVerified", { authenticatorId, isUserVerified: false });
  await page.getByRole("button", { name: "Delete my account with a passkey" }).click();
  await expect(page.getByTestId("passkey-problem")).toBeVisible();
  await page.goto(`${local.url}/account`);
  await expect(page.getByTestId("account-email")).toHaveText("passkey-leaver@example.com");

  await cdp.send("WebAuthn.setUserVerified", { authenticatorId, isUserVerified: true });
  await page.getByRole("link", { name: "Delete my account…" }).click();
  await page.getByRole("button", { name: "Delete my account with a passkey" }).click();
  await expect(page.getByText("Your account was deleted.")).toBeVisible();
  await expect
    .poll(async () => (await mailsTo("passkey-leaver@example.com", local)).map((m) => m.subject))
    .toContainEqual(expect.stringContaining("was deleted"));
  await page.goto(`${local.url}/account`);
  await expect(page).toHaveURL(/\/login\?redirectTo=/);
});
