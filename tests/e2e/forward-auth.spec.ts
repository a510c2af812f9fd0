import { expect, test } from "@playwright/test";
import { startNode, stopAllNodes, type NodeProcess } from "../support/node";
import { freePort } from "../support/ports";
import { nginxSnippet, startNginx, UpstreamApp, type ProxyProcess } from "../support/proxies";
import { codeIn } from "../support/smtp";
import { waitFor } from "../support/wait";

// nginx and the node are both 127.0.0.1, on different ports: cookies ignore ports, so the
// host-only session cookie the node sets is also sent to nginx, as COOKIE_DOMAIN would send it
// to sibling subdomains in production.
let node: NodeProcess;
let nginx: ProxyProcess;
const app = new UpstreamApp();

test.beforeAll(async () => {
  await app.start();
  const nginxPort = await freePort();
  node = await startNode({ env: { FORWARD_AUTH_HOSTS: `127.0.0.1:${nginxPort}`, TRUST_PROXY: "127.0.0.1" } });
  nginx = await startNginx(
    nginxPort,
    nginxSnippet({ proxy: `127.0.0.1:${nginxPort}`, pwdless: `127.0.0.1:${node.port}`, app: app.address }),
  );
});
test.afterAll(async () => {
  await nginx?.stop();
  await app.stop();
  await stopAllNodes();
});

test("a person opens an app behind nginx, signs in with the emailed code, and lands back on that page", async ({
  page,
}) => {
  const asked = `${nginx.url}/reports/2026?quarter=3&format=html`;
  await page.goto(asked);
  // not signed in: nginx asked PwdlessGs, which sent the person to sign in, remembering the page
  await expect(page).toHaveURL(`${node.url}/login?redirectTo=${encodeURIComponent(asked)}`);
  await page.getByLabel("Email address").fill("analyst@example.com");
  await page.getByRole("button", { name: "Email me a sign-in link" }).click();
  await expect(page.getByRole("heading", { name: "Check your email" })).toBeVisible();

  const mail = await waitFor("the sign-in mail", async () => {
    const { messages } = (await (await node.fetch("/dev/mailbox.json?to=analyst%40example.com")).json()) as {
      messages: { to: string; text: string }[];
    };
    return messages[0];
  });
  // six digits submit themselves
  await page.getByLabel("Code from the email").fill(codeIn(mail));

  await expect(page).toHaveURL(asked);
  await expect(page.getByRole("heading", { name: "Protected app" })).toBeVisible();
  await expect(page.locator("#who")).toHaveText("analyst@example.com");
  expect(app.seen.find((seen) => seen.url.startsWith("/reports/"))).toMatchObject({
    url: "/reports/2026?quarter=3&format=html",
    email: "analyst@example.com",
  });

  // the same sign-in opens the app's own pages, whose script calls the API with an access token
  await page.goto(`${node.url}/examples/private`);
  await expect(page.getByRole("heading", { name: "Hello, analyst@example.com" })).toBeVisible();
  await page.getByRole("button", { name: "Ask the API who I am" }).click();
  await expect(page.getByTestId("api-answer")).toContainText('"email":"analyst@example.com"');

  // signing out there ends the way in here
  await page.goto(`${node.url}/account`);
  await page.getByRole("button", { name: "Sign out", exact: true }).click();
  await expect(page.getByText("You are signed out.")).toBeVisible();
  await page.goto(asked);
  await expect(page).toHaveURL(/\/login\?redirectTo=/);
});
