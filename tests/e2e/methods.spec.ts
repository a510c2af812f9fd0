import { expect, test, type Page } from "@playwright/test";
import { clusterEnv, waitForMesh } from "../support/cluster";
import { startNode, stopAllNodes, type NodeProcess } from "../support/node";
import { freePort } from "../support/ports";
import { codeIn } from "../support/smtp";
import { waitFor } from "../support/wait";

let a: NodeProcess;
let b: NodeProcess;

/** WebAuthn refuses IP addresses as relying party ids: these nodes are reached as localhost. */
async function startLocalhostNode(env: Record<string, string>): Promise<NodeProcess> {
  const port = await freePort();
  return startNode({ port, env: { ...env, APP_URL: `http://localhost:${port}` } });
}

test.beforeAll(async () => {
  const env = clusterEnv();
  a = await startLocalhostNode(env);
  b = await startLocalhostNode(env);
  await waitForMesh([a, b]);
});
test.afterAll(stopAllNodes);

const origin = (node: NodeProcess) => node.env.APP_URL!;

/** The newest sign-in mail to an address, from the (replicated) development mailbox. */
async function newestMail(node: NodeProcess, email: string, after = 0) {
  return waitFor(`a mail to ${email}`, async () => {
    const { messages } = (await (await node.fetch("/dev/mailbox.json")).json()) as {
      messages: { to: string; text: string }[];
    };
    const mine = messages.filter((m) => m.to === email);
    return mine.length > after ? mine[0] : undefined;
  });
}

async function askForEmail(page: Page, node: NodeProcess, email: string) {
  await page.goto(`${origin(node)}/login`);
  await page.getByLabel("Email address").fill(email);
  await page.getByRole("button", { name: "Email me a sign-in link" }).click();
  await expect(page.getByRole("heading", { name: "Check your email" })).toBeVisible();
}

function cspWatch(page: Page): string[] {
  const blocked: string[] = [];
  page.on(
    "console",
    (m) => m.type() === "error" && /Content Security Policy/i.test(m.text()) && blocked.push(m.text()),
  );
  return blocked;
}

test("a person signs in by typing the code from the email", async ({ page }) => {
  const blocked = cspWatch(page);
  await askForEmail(page, a, "typist@example.com");
  const code = codeIn(await newestMail(a, "typist@example.com"));
  const field = page.getByLabel("Code from the email");
  await expect(field).toHaveAttribute("autocomplete", "one-time-code");
  await expect(field).toHaveAttribute("inputmode", "numeric");
  // six digits submit themselves: no button press
  await field.fill("000000" === code ? "111111" : "000000");
  await expect(page.getByRole("alert")).toContainText("That code is not right. You have 4 more tries");
  await expect(field).toHaveValue("");
  // pasted with the spaces a mail app may add: the digits are kept, and sent at once
  await field.fill(`${code.slice(0, 3)} ${code.slice(3)}`);
  await expect(page).toHaveURL(/\/account$/);
  await expect(page.getByTestId("account-email")).toHaveText("typist@example.com");
  expect(blocked).toEqual([]);
});

test("a link opened in another browser shows the code, which finishes the sign-in in the first", async ({
  page,
  browser,
}) => {
  await askForEmail(page, a, "two-devices@example.com");
  const link = /http:\/\/\S+/.exec((await newestMail(a, "two-devices@example.com")).text)![0];

  const phone = await browser.newContext();
  const phonePage = await phone.newPage();
  await phonePage.goto(link);
  await expect(
    phonePage.getByRole("heading", { name: "Open the link in the browser where you asked for it" }),
  ).toBeVisible();
  // the code is shown only once the person asks for it
  await expect(phonePage.getByTestId("shown-code")).toHaveCount(0);
  await phonePage.getByRole("button", { name: "Show the code for the other browser" }).click();
  const code = (await phonePage.getByTestId("shown-code").textContent())!.trim();
  expect(code).toMatch(/^[0-9]{6}$/);
  await phone.close();

  await page.getByLabel("Code from the email").fill(code);
  await expect(page).toHaveURL(/\/account$/);
  await expect(page.getByTestId("account-email")).toHaveText("two-devices@example.com");
});

test("a passkey added on node A signs in on node B, and can be removed", async ({ page }) => {
  const blocked = cspWatch(page);
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

  // sign in on A with the code, then add a passkey
  await askForEmail(page, a, "passkey@example.com");
  await page.getByLabel("Code from the email").fill(codeIn(await newestMail(a, "passkey@example.com")));
  await expect(page).toHaveURL(/\/account$/);
  await page.getByLabel("Name").fill("Test laptop");
  await page.getByRole("button", { name: "Add a passkey" }).click();
  await expect(page.getByTestId("passkey-row")).toHaveCount(1);
  await expect(page.getByTestId("passkey-row")).toContainText("Test laptop");
  const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
  expect(credentials).toHaveLength(1);
  expect(credentials[0]!.isResidentCredential).toBe(true);

  // the authenticator answers even the address field's passkey autofill by itself: hold it while
  // signing out, so the sign-in page A shows next does not sign straight back in
  await cdp.send("WebAuthn.setAutomaticPresenceSimulation", { authenticatorId, enabled: false });
  await page.getByRole("button", { name: "Sign out", exact: true }).click();
  await expect(page.getByText("You are signed out.")).toBeVisible();

  // on node B, passkey autofill: the address field offers the passkey, and taking it signs in
  await waitFor("the passkey replicated to B", async () => {
    const res = await b.fetch("/cluster.json");
    return ((await res.json()) as { tables: Record<string, number> }).tables.passkeys === 1;
  });
  await page.goto(`${origin(b)}/login`);
  await expect(page.getByLabel("Email address")).toHaveAttribute("autocomplete", "email webauthn");
  // with presence on, the authenticator takes the autofill's request as soon as the page makes it
  await cdp.send("WebAuthn.setAutomaticPresenceSimulation", { authenticatorId, enabled: true });
  await page.reload();
  await expect(page).toHaveURL(new RegExp(`^${origin(b)}/account$`));
  await expect(page.getByTestId("account-email")).toHaveText("passkey@example.com");
  await expect(page.getByTestId("passkey-row")).toContainText("Test laptop");
  await expect(page.getByTestId("passkey-row")).not.toContainText("never");

  // the button, in a browser without passkey autofill (so only the button asks the authenticator)
  await page.addInitScript(() => {
    PublicKeyCredential.isConditionalMediationAvailable = async () => false;
  });
  // the sign-out lands on /login in this same document (the init script applies to the next
  // one), whose autofill the authenticator would answer at once: hold it until the page is new
  await cdp.send("WebAuthn.setAutomaticPresenceSimulation", { authenticatorId, enabled: false });
  await page.getByRole("button", { name: "Sign out", exact: true }).click();
  await expect(page.getByText("You are signed out.")).toBeVisible();
  await page.goto(`${origin(b)}/login`);
  await cdp.send("WebAuthn.setAutomaticPresenceSimulation", { authenticatorId, enabled: true });
  await page.getByRole("button", { name: "Sign in with a passkey" }).click();
  await expect(page).toHaveURL(new RegExp(`^${origin(b)}/account$`));
  await expect(page.getByTestId("account-email")).toHaveText("passkey@example.com");

  // remove it: the authenticator still holds the credential, but it no longer signs in
  // removing asks first
  await page.getByRole("link", { name: "Remove Test laptop" }).click();
  await expect(page.getByRole("heading", { name: "Remove the passkey “Test laptop”?" })).toBeVisible();
  await page.getByRole("button", { name: "Yes, remove it" }).click();
  await expect(page.getByTestId("passkey-row")).toHaveCount(0);
  await page.getByRole("button", { name: "Sign out", exact: true }).click();
  await page.goto(`${origin(b)}/login`);
  await page.getByRole("button", { name: "Sign in with a passkey" }).click();
  await expect(page.getByTestId("passkey-problem")).toContainText("This site does not know that passkey");
  expect(blocked).toEqual([]);
});
