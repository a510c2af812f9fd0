// "Sign in with PwdlessGs" in Chromium: the example app (examples/openid-client/web.mjs, its own
// process) signs a person in through a two-node cluster behind a balancer (APP_URL), with the
// emailed code; its token refresh lands on node B; its sign-out signs the person out everywhere.
import { spawn, type ChildProcess } from "node:child_process";
import { expect, test } from "@playwright/test";
import { Balancer } from "../support/balancer";
import { clusterEnv } from "../support/cluster";
import { ROOT, startNode, stopAllNodes, type NodeProcess } from "../support/node";
import { clientsFile, SECRET } from "../support/oidc";
import { freePort } from "../support/ports";
import { codeIn, TestSmtpServer } from "../support/smtp";
import { waitFor } from "../support/wait";

let smtp: TestSmtpServer;
let balancer: Balancer;
let a: NodeProcess;
let b: NodeProcess;
let rp: ChildProcess;
let rpUrl: string;
const rpOutput: string[] = [];

test.beforeAll(async () => {
  smtp = await new TestSmtpServer().start();
  balancer = await Balancer.start();
  const rpPort = await freePort();
  rpUrl = `http://127.0.0.1:${rpPort}`;
  const env = {
    ...clusterEnv(),
    APP_URL: balancer.url,
    SMTP_URL: smtp.url,
    OIDC_PROVIDER_CLIENTS_FILE: clientsFile([
      {
        client_id: "web",
        client_name: "Example App",
        client_secret: SECRET,
        redirect_uris: [`${rpUrl}/callback`],
        post_logout_redirect_uris: [`${rpUrl}/`],
        grant_types: ["authorization_code", "refresh_token"],
        first_party: true,
      },
    ]),
  };
  a = await startNode({ env });
  b = await startNode({ env });
  await waitFor("both nodes ready", async () => (await a.fetch("/readyz")).ok && (await b.fetch("/readyz")).ok, 30_000);
  balancer.route(a);
  rp = spawn(process.execPath, ["examples/openid-client/web.mjs"], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      NODE_ENV: "test",
      ISSUER: balancer.url,
      CLIENT_ID: "web",
      CLIENT_SECRET: SECRET,
      PORT: String(rpPort),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const collect = (chunk: Buffer) => rpOutput.push(chunk.toString());
  rp.stdout!.on("data", collect);
  rp.stderr!.on("data", collect);
  await waitFor("the example app to listen", async () => (await fetch(rpUrl).catch(() => undefined))?.ok, 30_000);
});

test.afterAll(async () => {
  rp?.kill("SIGKILL");
  await stopAllNodes();
  await balancer?.stop();
  await smtp?.stop();
});

test("an app signs a person in with PwdlessGs, refreshes on node B, and its sign-out reaches every node", async ({
  page,
}) => {
  const email = "rp-journey@example.com";
  await page.goto(rpUrl);
  await page.getByRole("link", { name: "Sign in with PwdlessGs" }).click();

  // PwdlessGs's own sign-in page, serving the app's sign-in
  await expect(page).toHaveURL(new RegExp(`^${balancer.url}/login\\?redirectTo=%2Foidc%2Finteraction%2F`));
  await expect(page.getByTestId("sign-in-for-app")).toHaveText("to continue to Example App");
  await page.getByLabel("Email address").fill(email);
  await page.getByRole("button", { name: "Email me a sign-in link" }).click();
  await expect(page.getByRole("heading", { name: "Check your email" })).toBeVisible();
  const mail = await waitFor(`a mail to ${email}`, () => smtp.to(email)[0]);
  // six digits submit themselves
  await page.getByLabel("Code from the email").fill(codeIn(mail));

  // a first-party app: no consent page, straight back to the app
  await expect(page).toHaveURL(`${rpUrl}/`);
  await expect(page.getByTestId("rp-email")).toHaveText(email);
  const sub = await page.getByTestId("rp-sub").textContent();

  // the same person as PwdlessGs's own /api/me says
  await page.goto(`${balancer.url}/account`);
  await expect(page.getByTestId("account-id")).toHaveText(sub!);
  await expect(page.getByTestId("app-row")).toContainText("Example App");

  // the app's refresh goes to node B, and gives a working access token (userinfo, also on B)
  balancer.route(b);
  const servedByB = balancer.served.get(b.port) ?? 0;
  await page.goto(rpUrl);
  await page.getByRole("button", { name: "Refresh tokens" }).click();
  await expect(page.getByTestId("rp-refreshed")).toHaveText("1");
  await expect(page.getByTestId("rp-email")).toHaveText(email);
  expect(balancer.served.get(b.port) ?? 0).toBeGreaterThan(servedByB);

  // RP-initiated logout: the app sends the browser to PwdlessGs (node A now), which asks, then signs out
  balancer.route(a);
  const signedIn = await page.context().cookies(balancer.url);
  await page.getByRole("link", { name: "Sign out" }).click();
  await expect(page.getByRole("heading", { name: "Sign out of PwdlessGs?" })).toBeVisible();
  await expect(page.getByText("Example App asked to sign you out.")).toBeVisible();
  await page.getByRole("button", { name: "Sign out", exact: true }).click();
  await expect(page).toHaveURL(`${rpUrl}/`);
  await expect(page.getByText("You are not signed in.")).toBeVisible();

  // signed out of PwdlessGs on every node, even with the old cookie put back
  await page.context().addCookies(signedIn.filter((cookie) => cookie.name === "pwdless_session"));
  for (const node of [a, b]) {
    balancer.route(node);
    await expect(async () => {
      await page.goto(`${balancer.url}/account`);
      await expect(page).toHaveURL(/\/login\?redirectTo=/, { timeout: 1_000 });
    }).toPass({ timeout: 10_000 });
  }
  expect(rpOutput.join("")).not.toMatch(/Error/);
});
