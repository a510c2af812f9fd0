/**
 * Every page a person meets through "Sign in with PwdlessGs" (the OpenID provider), walked like
 * tests/e2e/screens.spec.ts walks the app's own: a phone (390 px) and a desktop (1280 px), in
 * English and in German. Each page fits the screen, has a <title>, passes axe-core, and in German
 * has no English left; each problem page names a next step and never sends the browser on to an
 * address the provider did not register.
 */
import { createServer, type Server } from "node:http";
import { expect, test, type Page } from "@playwright/test";
import { startNode, stopAllNodes, type NodeProcess } from "../support/node";
import { clientsFile, pkce, SECRET, startDevice } from "../support/oidc";
import { freePort } from "../support/ports";
import { check, checkGerman, newContext, translator, type Screen } from "../support/screens";
import { waitFor } from "../support/wait";

let node: NodeProcess;
/** the apps' own pages: where the provider sends the browser back to */
let app: Server;
let appUrl: string;

test.beforeAll(async () => {
  const appPort = await freePort();
  appUrl = `http://127.0.0.1:${appPort}`;
  app = createServer((_req, res) => res.writeHead(200, { "Content-Type": "text/plain" }).end("Back in the app"));
  await new Promise<void>((resolve) => app.listen(appPort, "127.0.0.1", resolve));
  node = await startNode({
    env: {
      RATE_LIMIT_REQUESTS_PER_IP: "1000",
      RATE_LIMIT_EMAILS_PER_ADDRESS: "100",
      OIDC_PROVIDER_CLIENTS_FILE: clientsFile([
        {
          // not first party: the person is asked, and it is listed on /account
          client_id: "partner",
          client_name: "Partner App",
          client_secret: SECRET,
          redirect_uris: [`${appUrl}/callback`],
          grant_types: ["authorization_code", "refresh_token"],
        },
        {
          client_id: "web",
          client_name: "Team Web App",
          client_secret: SECRET,
          redirect_uris: [`${appUrl}/web/callback`],
          post_logout_redirect_uris: [`${appUrl}/`],
          first_party: true,
        },
        {
          client_id: "cli",
          client_name: "Team CLI",
          token_endpoint_auth_method: "none",
          grant_types: ["urn:ietf:params:oauth:grant-type:device_code"],
          first_party: true,
        },
      ]),
    },
  });
});
test.afterAll(async () => {
  await stopAllNodes();
  await new Promise((resolve) => app?.close(resolve));
});

const SCREENS: Screen[] = [
  { name: "phone", width: 390, locale: "en", colorScheme: "light" },
  { name: "desktop", width: 1280, locale: "en", colorScheme: "light" },
  { name: "phone, German, dark", width: 390, locale: "de", colorScheme: "dark" },
  { name: "desktop, German", width: 1280, locale: "de", colorScheme: "light" },
];

type Mail = { to: string; subject: string; text: string };

async function mailsTo(email: string): Promise<Mail[]> {
  const res = await node.fetch(`/dev/mailbox.json?to=${encodeURIComponent(email)}`);
  return ((await res.json()) as { messages: Mail[] }).messages;
}
const codeOf = (mail: Mail) => /^\s+([0-9]{6})$/m.exec(mail.text)![1]!;

/** An authorization request to the provider, as an app's "Sign in" link makes it. */
function authorizeUrl(params: Record<string, string>): string {
  const { challenge } = pkce();
  return `${node.url}/oidc/auth?${new URLSearchParams({
    response_type: "code",
    scope: "openid email profile offline_access",
    prompt: "consent",
    state: "s",
    nonce: "n",
    code_challenge: challenge,
    code_challenge_method: "S256",
    ...params,
  })}`;
}

/** The switcher in a provider page's header: choose a language, press the button, the page comes back in it. */
async function switchLanguage(page: Page, t: ReturnType<typeof translator>, language: string): Promise<void> {
  await page.getByLabel(t("language.label")).selectOption({ label: language });
  await page.getByRole("button", { name: t("language.change") }).click();
  await page.waitForLoadState("load");
}

for (const screen of SCREENS) {
  test(`every provider page fits a ${screen.width} px screen, passes axe and speaks ${screen.locale} (${screen.name})`, async ({
    browser,
  }) => {
    test.setTimeout(180_000);
    const t = translator(screen.locale);
    const problems: string[] = [];
    const email = `provider-${screen.width}-${screen.locale}@an-unusually-long-domain-name.example.com`;
    const context = await newContext(browser, screen);
    const page = await context.newPage();
    // every address the browser is sent to, to show that no problem page sends it anywhere else
    const visited: string[] = [];
    page.on("request", (request) => {
      if (request.isNavigationRequest()) visited.push(request.url());
    });
    const walk = async (state: string, on: Page = page) => {
      await check(on, state, problems, { every: true });
      if (screen.locale === "de") await checkGerman(on, state, problems);
    };

    // an app that is not first party asks: PwdlessGs's sign-in names it, then asks for consent
    await page.goto(authorizeUrl({ client_id: "partner", redirect_uri: `${appUrl}/callback` }));
    await expect(page).toHaveURL(/\/login\?redirectTo=%2Foidc%2Finteraction%2F/);
    await expect(page.getByTestId("sign-in-for-app")).toHaveText(t("login.forApp", { app: "Partner App" }));
    await walk("sign-in for an app");
    await page.getByLabel(t("login.email")).fill(email);
    await page.getByRole("button", { name: t("login.emailButton") }).click();
    await expect(page.getByRole("heading", { name: t("sent.title") })).toBeVisible();
    const mail = await waitFor(`a mail to ${email}`, async () => (await mailsTo(email))[0]);
    await page.getByLabel(t("sent.codeLabel")).fill(codeOf(mail));
    await expect(
      page.getByRole("heading", { name: t("provider.consent.title", { app: "Partner App" }) }),
    ).toBeVisible();
    await expect(page.getByTestId("consent-scopes").getByRole("listitem")).toHaveText([
      t("provider.scope.openid"),
      t("provider.scope.email"),
      t("provider.scope.profile"),
      t("provider.scope.offline_access"),
    ]);
    await walk("consent");
    // a person who reads English better (or German) changes the page's language, and carries on in it
    const other = screen.locale === "en" ? "de" : "en";
    const switched = translator(other);
    await switchLanguage(page, t, switched("language.name"));
    await expect(page.locator("html")).toHaveAttribute("lang", other);
    await expect(
      page.getByRole("heading", { name: switched("provider.consent.title", { app: "Partner App" }) }),
    ).toBeVisible();
    if (other === "de") await checkGerman(page, "consent, switched to German", problems);
    await page.getByRole("button", { name: switched("provider.consent.allow") }).click();
    await expect(page).toHaveURL(new RegExp(`^${appUrl}/callback\\?code=`));

    // the app is listed on /account, with what it may do (back in the walk's language first)
    await page.goto(`${node.url}/device`);
    await switchLanguage(page, switched, t("language.name"));
    await expect(page.locator("html")).toHaveAttribute("lang", screen.locale);
    await page.goto(`${node.url}/account`);
    await expect(page.getByTestId("app-row")).toHaveCount(1);
    await expect(page.getByTestId("app-row")).toContainText("Partner App");
    await expect(page.getByTestId("app-row")).toContainText(t("account.apps.scope.email"));
    await walk("account with an app that has access");

    // a device: the code page, a wrong code, the question, approved, cancelled, a used code
    await page.goto(`${node.url}/device`);
    await expect(page.getByRole("heading", { name: t("provider.device.title") })).toBeVisible();
    await walk("device: enter the code");
    await page.getByLabel(t("provider.device.label")).fill("BCDF-GHJK");
    await page.getByRole("button", { name: t("provider.device.continue") }).click();
    await expect(page.getByRole("alert")).toHaveText(t("provider.device.error.wrong"));
    await expect(page.getByLabel(t("provider.device.label"))).toHaveAttribute("aria-invalid", "true");
    await walk("device: a wrong code");

    const approved = await startDevice(node, "cli", "openid email");
    await page.getByLabel(t("provider.device.label")).fill(approved.user_code);
    await page.getByRole("button", { name: t("provider.device.continue") }).click();
    await expect(page.getByTestId("device-user-code")).toHaveText(approved.user_code);
    await walk("device: is this your code?");
    await page.getByRole("button", { name: t("provider.device.continue") }).click();
    await expect(page.getByRole("heading", { name: t("provider.device.doneTitle") })).toBeVisible();
    await walk("device: approved");

    const cancelled = await startDevice(node, "cli", "openid email");
    await page.goto(`${node.url}/device`);
    await page.getByLabel(t("provider.device.label")).fill(cancelled.user_code);
    await page.getByRole("button", { name: t("provider.device.continue") }).click();
    await page.getByRole("button", { name: t("provider.device.cancel") }).click();
    await expect(page.getByRole("alert")).toHaveText(t("provider.device.error.aborted"));
    await walk("device: cancelled");

    await page.getByLabel(t("provider.device.label")).fill(approved.user_code);
    await page.getByRole("button", { name: t("provider.device.continue") }).click();
    await expect(page.getByRole("alert")).toHaveText(t("provider.device.error.used"));
    await walk("device: a code used already");

    // problem pages: a page for people with a way on, never a redirect to what was not registered
    visited.length = 0;
    const unknown = await page.goto(authorizeUrl({ client_id: "nobody", redirect_uri: `${appUrl}/callback` }));
    expect(unknown!.status()).toBe(400);
    expect(unknown!.headers()["content-type"]).toMatch(/^text\/html/);
    await expect(page.getByRole("heading", { name: t("provider.refused.title") })).toBeVisible();
    await expect(page.getByText(t("provider.refused.unknownApp", { brand: "PwdlessGs" }))).toBeVisible();
    await expect(page.getByRole("main").getByRole("link", { name: t("nav.signIn") })).toBeVisible();
    await expect(page.getByRole("main").locator("code")).toContainText("invalid_client");
    await walk("authorization from an unknown app");

    const stranger = "http://127.0.0.2:9/steal";
    const mismatch = await page.goto(authorizeUrl({ client_id: "partner", redirect_uri: stranger }));
    expect(mismatch!.status()).toBe(400);
    await expect(page.getByRole("heading", { name: t("provider.refused.title") })).toBeVisible();
    await expect(page.getByText(t("provider.refused.unregisteredRedirect", { brand: "PwdlessGs" }))).toBeVisible();
    await expect(page.getByRole("main").locator("code")).toContainText("invalid_redirect_uri");
    await walk("authorization with an unregistered redirect_uri");
    expect(visited.filter((url) => !url.startsWith(node.url))).toEqual([]);

    await page.goto(`${node.url}/oidc/interaction/no-such-interaction`);
    await expect(page.getByRole("heading", { name: t("provider.expired.title") })).toBeVisible();
    await walk("an interaction that has ended");
    const missing = await page.goto(`${node.url}/oidc/no/such/page`);
    expect(missing!.status()).toBe(404);
    await expect(page.getByRole("heading", { name: t("error.404.title") })).toBeVisible();
    await walk("a provider page that does not exist");

    // RP-initiated sign-out: the question, then back to the app's registered page
    await page.goto(
      `${node.url}/oidc/session/end?${new URLSearchParams({ client_id: "web", post_logout_redirect_uri: `${appUrl}/` })}`,
    );
    await expect(page.getByRole("heading", { name: t("provider.logout.title", { brand: "PwdlessGs" }) })).toBeVisible();
    await expect(page.getByText(t("provider.logout.asked", { app: "Team Web App" }))).toBeVisible();
    await walk("sign out, asked by an app");
    await page.getByRole("button", { name: t("provider.logout.signOut"), exact: true }).click();
    await expect(page).toHaveURL(`${appUrl}/`);

    await context.close();
    expect(problems).toEqual([]);
  });
}
