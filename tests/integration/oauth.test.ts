import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CookieJar } from "../support/cookie-jar";
import { accessToken, browse, form, pathOf, signIn } from "../support/flows";
import {
  accountData,
  answerAtDevProvider,
  MisbehavingServer,
  s256,
  ScriptedIssuer,
  signInWithDev,
  startProviderSignIn,
} from "../support/oauth";
import { freePort } from "../support/ports";
import { startNode, stopAllNodes, testSecret, type NodeProcess } from "../support/node";
import { waitFor } from "../support/wait";

afterAll(stopAllNodes);

async function me(node: NodeProcess, jar: CookieJar): Promise<{ id: string; email: string }> {
  const token = await accessToken(node, jar);
  const res = await node.fetch("/api/me", { headers: { Authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as { id: string; email: string };
}

/** A refused sign-in: the status, a page that says why with a "Try again" button, no session, a log line. */
async function expectRefused(
  node: NodeProcess,
  res: Response,
  jar: CookieJar,
  expected: { status: number; reason: string; says: string; provider: string },
) {
  const html = await res.text();
  expect(res.status, html.slice(0, 400)).toBe(expected.status);
  expect(html).toContain(expected.says);
  expect(html).toContain(`data-problem="${expected.reason}"`);
  expect(html).toMatch(new RegExp(`<form method="post" action="/auth/${expected.provider}"[^>]*>`));
  expect(html).toContain("Try again");
  expect(html).not.toMatch(/\n\s+at /); // no stack trace
  expect(jar.get("pwdless_session")).toBeUndefined();
  expect(jar.get("pwdless_oauth")).toBeUndefined(); // the attempt is over, whatever its outcome
  await waitFor(`a log line for the refusal (${expected.reason})`, () =>
    node
      .events()
      .some(
        (e) =>
          e.event === "refused" &&
          e.method === expected.provider &&
          e.reason === `${expected.provider}-${expected.reason}`,
      ),
  );
}

describe("sign in through the development OpenID provider (local mode, no settings)", () => {
  let node: NodeProcess;

  beforeAll(async () => {
    node = await startNode();
  });

  it("offers the provider on /login and signs in to the same kind of session as an email link", async () => {
    const jar = new CookieJar();
    const login = await (await browse(node, jar, "/login")).text();
    expect(login).toContain("Sign in with Dev OIDC");
    expect(login).toContain('action="/auth/dev"');

    const authorization = await startProviderSignIn(node, jar, "dev", "/account?tab=methods");
    expect(authorization.origin + authorization.pathname).toBe(`${node.url}/dev/oidc/auth`);
    const q = authorization.searchParams;
    expect(q.get("client_id")).toBe("pwdless-gs-dev");
    expect(q.get("redirect_uri")).toBe(`${node.url}/auth/dev/callback`);
    expect(q.get("response_type")).toBe("code");
    expect(q.get("code_challenge_method")).toBe("S256");
    expect(q.get("code_challenge")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(q.get("state")!.length).toBeGreaterThanOrEqual(32);
    expect(q.get("nonce")!.length).toBeGreaterThanOrEqual(32);
    expect(q.get("scope")!.split(" ")).toEqual(expect.arrayContaining(["openid", "email"]));
    expect(jar.get("pwdless_oauth")).toBeDefined();

    const callback = await answerAtDevProvider(node, jar, authorization, { email: "  Nadia@Example.COM " });
    expect(callback.searchParams.get("state")).toBe(q.get("state"));
    const code = callback.searchParams.get("code")!;
    const done = await browse(node, jar, pathOf(callback.href));
    expect(done.status).toBe(302);
    expect(done.headers.get("location")).toBe("/account?tab=methods");
    expect(done.headers.get("referrer-policy")).toBe("no-referrer"); // the code never leaves in a Referer
    const session = done.headers.getSetCookie().find((c) => c.startsWith("pwdless_session="))!;
    expect(session).toMatch(/HttpOnly/i);
    expect(session).toMatch(/SameSite=Lax/i);
    expect(jar.get("pwdless_oauth")).toBeUndefined();

    const user = await me(node, jar);
    expect(user.email).toBe("nadia@example.com");
    const account = await accountData(node, jar);
    expect(account.methods).toEqual(["Dev OIDC"]);
    expect(account.sessions.map((s) => s.method)).toEqual(["dev"]);

    await waitFor("the sign-in log line", () =>
      node.events().some((e) => e.event === "sign-in" && e.method === "dev" && e.uid === user.id),
    );
    expect(node.log).not.toContain(code);
    expect(node.log).not.toContain(q.get("state")!);
  });

  it("reaches the same account as the email link for the same address, whichever comes first", async () => {
    const byLink = await signIn(node, "linked@example.com");
    const first = await me(node, byLink);

    const jar = new CookieJar();
    expect((await signInWithDev(node, "Linked@Example.com", jar)).status).toBe(302);
    expect((await me(node, jar)).id).toBe(first.id);
    expect((await accountData(node, jar)).methods).toEqual(["Email link or code", "Dev OIDC"]);

    // and the other way round: a provider account first, then an email link
    const providerFirst = new CookieJar();
    await signInWithDev(node, "provider-first@example.com", providerFirst);
    const linkAfter = await signIn(node, "provider-first@example.com");
    expect((await me(node, linkAfter)).id).toBe((await me(node, providerFirst)).id);

    // signing in again with the provider adds no second identity
    await signInWithDev(node, "linked@example.com", new CookieJar());
    expect((await accountData(node, jar)).methods).toEqual(["Email link or code", "Dev OIDC"]);
  });

  it("explains a sign-in cancelled at the provider, and Try again starts a new one", async () => {
    const jar = new CookieJar();
    const authorization = await startProviderSignIn(node, jar, "dev");
    const callback = await answerAtDevProvider(node, jar, authorization, { cancel: true });
    expect(callback.searchParams.get("error")).toBe("access_denied");
    const res = await browse(node, jar, pathOf(callback.href));
    await expectRefused(node, res, jar, {
      status: 403,
      reason: "denied",
      says: "Sign-in was cancelled",
      provider: "dev",
    });

    const again = await startProviderSignIn(node, jar, "dev");
    expect(again.searchParams.get("state")).not.toBe(authorization.searchParams.get("state"));
  });

  it("refuses an answer whose state does not match the sign-in started in this browser", async () => {
    const jar = new CookieJar();
    const authorization = await startProviderSignIn(node, jar, "dev");
    const callback = await answerAtDevProvider(node, jar, authorization, { email: "state@example.com" });
    const forged = new URL(callback.href);
    forged.searchParams.set("state", "x".repeat(43));
    await expectRefused(node, await browse(node, jar, pathOf(forged.href)), jar, {
      status: 400,
      reason: "state",
      says: "This sign-in could not be checked",
      provider: "dev",
    });

    // an answer opened in a browser that never started a sign-in
    const elsewhere = new CookieJar();
    await expectRefused(node, await browse(node, elsewhere, pathOf(callback.href)), elsewhere, {
      status: 400,
      reason: "state",
      says: "This sign-in could not be checked",
      provider: "dev",
    });
  });

  it("refuses a code used twice, and a code injected into another browser's sign-in (PKCE)", async () => {
    const jar = new CookieJar();
    const authorization = await startProviderSignIn(node, jar, "dev");
    const callback = await answerAtDevProvider(node, jar, authorization, { email: "replay@example.com" });
    const beforeUse = jar.clone(); // still holds the state cookie
    expect((await browse(node, jar, pathOf(callback.href))).status).toBe(302);
    await expectRefused(node, await browse(node, beforeUse, pathOf(callback.href)), beforeUse, {
      status: 400,
      reason: "code",
      says: "already used or has expired",
      provider: "dev",
    });

    // the attacker's own sign-in, with the victim's code: the state matches, the PKCE verifier does not
    const victim = new CookieJar();
    const victimCallback = await answerAtDevProvider(node, victim, await startProviderSignIn(node, victim, "dev"), {
      email: "victim@example.com",
    });
    const attacker = new CookieJar();
    const attackerStart = await startProviderSignIn(node, attacker, "dev");
    const injected = new URL(`${node.url}/auth/dev/callback`);
    injected.searchParams.set("code", victimCallback.searchParams.get("code")!);
    injected.searchParams.set("state", attackerStart.searchParams.get("state")!);
    await expectRefused(node, await browse(node, attacker, pathOf(injected.href)), attacker, {
      status: 400,
      reason: "code",
      says: "already used or has expired",
      provider: "dev",
    });
  });

  it("refuses an address the provider has not verified, and says why", async () => {
    const jar = new CookieJar();
    const authorization = await startProviderSignIn(node, jar, "dev");
    const callback = await answerAtDevProvider(node, jar, authorization, {
      email: "unverified@example.com",
      verified: false,
    });
    await expectRefused(node, await browse(node, jar, pathOf(callback.href)), jar, {
      status: 403,
      reason: "unverified-email",
      says: "Your email address at Dev OIDC is not verified",
      provider: "dev",
    });
  });

  it("answers 404 for providers that are not configured, and keeps its static /auth routes", async () => {
    expect((await node.fetch("/auth/github", form({}))).status).toBe(404);
    expect((await node.fetch("/auth/nope/callback?code=a&state=b")).status).toBe(404);
    const page = await node.fetch("/auth/dev");
    expect(page.status).toBe(200); // a GET starts nothing: it shows the button that does
    expect(await page.text()).toContain("Continue with Dev OIDC");
    expect((await node.fetch("/auth/refresh", { method: "POST" })).status).toBe(401);
    const link = await node.fetch("/auth/email/callback?token=nonsense");
    expect(link.status).toBe(400);
    expect(await link.text()).toContain("This link does not work");
  });
});

describe("sign in through a configured OpenID Connect issuer", () => {
  const issuer = new ScriptedIssuer();
  let node: NodeProcess;
  const clientId = "pwdless-test-client";
  const clientSecret = testSecret();

  beforeAll(async () => {
    await issuer.start();
    node = await startNode({
      env: {
        OIDC_ISSUER: issuer.url,
        OIDC_CLIENT_ID: clientId,
        OIDC_CLIENT_SECRET: clientSecret,
        OIDC_NAME: "Acme SSO",
        OAUTH_TIMEOUT_MS: "1500",
        DEV_OIDC: "false",
      },
    });
  });
  afterAll(() => issuer.stop());

  /** Start on the node, and come back from the issuer with a code, as its authorization page would. */
  async function answerWith(claims: (nonce: string) => Record<string, unknown>, jar = new CookieJar()) {
    const authorization = await startProviderSignIn(node, jar, "oidc");
    const q = authorization.searchParams;
    issuer.claims = claims(q.get("nonce")!);
    const callback = `/auth/oidc/callback?code=scripted-code&state=${encodeURIComponent(q.get("state")!)}`;
    return { jar, authorization, res: await browse(node, jar, callback) };
  }

  const good = (nonce: string) => ({
    sub: "acme-42",
    aud: clientId,
    nonce,
    email: "Olu@Example.com",
    email_verified: true,
  });

  it("shows only the configured providers, and signs in with a checked ID token", async () => {
    const login = await (await node.fetch("/login")).text();
    expect(login).toContain("Sign in with Acme SSO");
    expect(login).not.toContain("Dev OIDC");
    expect((await node.fetch("/auth/dev", form({}))).status).toBe(404);

    issuer.tokenMode = "answer";
    const { jar, authorization, res } = await answerWith(good);
    expect(authorization.origin).toBe(issuer.url);
    expect(res.status).toBe(302);
    expect((await me(node, jar)).email).toBe("olu@example.com");
    expect((await accountData(node, jar)).methods).toEqual(["Acme SSO"]);

    // the code exchange carried our client's credentials and the PKCE verifier of the challenge sent
    const exchange = issuer.tokenRequests.at(-1)!;
    expect(exchange.get("code")).toBe("scripted-code");
    expect(exchange.get("client_id")).toBe(clientId);
    expect(exchange.get("client_secret")).toBe(clientSecret);
    expect(exchange.get("redirect_uri")).toBe(`${node.url}/auth/oidc/callback`);
    expect(s256(exchange.get("code_verifier")!)).toBe(authorization.searchParams.get("code_challenge"));
    expect(node.log).not.toContain(clientSecret);
  });

  it("refuses ID tokens with another nonce, audience or issuer, a foreign signature, or an expiry in the past", async () => {
    issuer.tokenMode = "answer";
    const cases: [string, (nonce: string) => Record<string, unknown>][] = [
      ["nonce", (nonce) => ({ ...good(nonce), nonce: `${nonce}x` })],
      ["no nonce", (nonce) => ({ ...good(nonce), nonce: undefined })],
      ["audience", (nonce) => ({ ...good(nonce), aud: "another-client" })],
      ["issuer", (nonce) => ({ ...good(nonce), iss: "https://evil.example" })],
      ["expired", (nonce) => ({ ...good(nonce), iat: 1_000, exp: 2_000 })],
    ];
    for (const [name, claims] of cases) {
      const { jar, res } = await answerWith(claims);
      expect(res.status, name).toBe(502);
      await expectRefused(node, res, jar, {
        status: 502,
        reason: "id-token",
        says: "We could not verify the answer from Acme SSO",
        provider: "oidc",
      });
    }
    issuer.signWithForeignKey = true;
    try {
      const { jar, res } = await answerWith(good);
      await expectRefused(node, res, jar, {
        status: 502,
        reason: "id-token",
        says: "We could not verify the answer from Acme SSO",
        provider: "oidc",
      });
    } finally {
      issuer.signWithForeignKey = false;
    }
  });

  it("refuses an unverified or missing email claim", async () => {
    issuer.tokenMode = "answer";
    const unverified = await answerWith((nonce) => ({ ...good(nonce), email_verified: false }));
    await expectRefused(node, unverified.res, unverified.jar, {
      status: 403,
      reason: "unverified-email",
      says: "Your email address at Acme SSO is not verified",
      provider: "oidc",
    });
    const missing = await answerWith((nonce) => ({ ...good(nonce), email: undefined, email_verified: undefined }));
    await expectRefused(node, missing.res, missing.jar, {
      status: 403,
      reason: "no-email",
      says: "Acme SSO did not share an email address",
      provider: "oidc",
    });
  });

  it("explains a slow token endpoint (timeout), a garbage answer, a refused code and an answer from another issuer", async () => {
    issuer.tokenMode = "hang";
    const started = Date.now();
    const slow = await answerWith(good);
    expect(Date.now() - started).toBeLessThan(10_000);
    await expectRefused(node, slow.res, slow.jar, {
      status: 504,
      reason: "timeout",
      says: "Acme SSO is not answering",
      provider: "oidc",
    });

    issuer.tokenMode = "garbage";
    const garbage = await answerWith(good);
    await expectRefused(node, garbage.res, garbage.jar, {
      status: 502,
      reason: "malformed",
      says: "Acme SSO sent an answer we cannot use",
      provider: "oidc",
    });

    issuer.tokenMode = "invalid_grant";
    const expired = await answerWith(good);
    await expectRefused(node, expired.res, expired.jar, {
      status: 400,
      reason: "code",
      says: "already used or has expired",
      provider: "oidc",
    });

    // RFC 9207: an answer naming another issuer is refused before the code is sent anywhere
    issuer.tokenMode = "answer";
    const before = issuer.tokenRequests.length;
    const jar = new CookieJar();
    const state = (await startProviderSignIn(node, jar, "oidc")).searchParams.get("state")!;
    const res = await browse(
      node,
      jar,
      `/auth/oidc/callback?code=c&state=${encodeURIComponent(state)}&iss=${encodeURIComponent("https://evil.example")}`,
    );
    await expectRefused(node, res, jar, {
      status: 400,
      reason: "state",
      says: "This sign-in could not be checked",
      provider: "oidc",
    });
    expect(issuer.tokenRequests.length).toBe(before);
  });
});

describe("an OpenID Connect issuer that cannot be reached, is slow, or is not one", () => {
  let node: NodeProcess;
  let issuer: MisbehavingServer;

  beforeAll(async () => {
    const port = await freePort();
    let issuerPort = await freePort();
    while (issuerPort === port) issuerPort = await freePort();
    issuer = new MisbehavingServer(issuerPort); // nothing listens there yet
    node = await startNode({
      port,
      env: {
        OIDC_ISSUER: `http://127.0.0.1:${issuer.port}`,
        OIDC_CLIENT_ID: "c",
        OIDC_CLIENT_SECRET: "s",
        OAUTH_TIMEOUT_MS: "1000",
      },
    });
  });
  afterAll(() => issuer.close());

  it("shows a page with Try again for each, never a 5xx error page, and works once the issuer does", async () => {
    const unreachable = new CookieJar();
    await expectRefused(node, await browse(node, unreachable, "/auth/oidc", form({})), unreachable, {
      status: 502,
      reason: "unreachable",
      says: "OpenID Connect cannot be reached",
      provider: "oidc",
    });

    await issuer.listen(); // accepts connections, never answers
    const slow = new CookieJar();
    await expectRefused(node, await browse(node, slow, "/auth/oidc", form({})), slow, {
      status: 504,
      reason: "timeout",
      says: "OpenID Connect is not answering",
      provider: "oidc",
    });

    await issuer.listen((res) => res.writeHead(200, { "Content-Type": "application/json" }).end('{"hello":'));
    const garbage = new CookieJar();
    await expectRefused(node, await browse(node, garbage, "/auth/oidc", form({})), garbage, {
      status: 502,
      reason: "malformed",
      says: "OpenID Connect sent an answer we cannot use",
      provider: "oidc",
    });

    // a failed discovery is not remembered: the dev provider on the same node still works meanwhile
    const dev = await signInWithDev(node, "meanwhile@example.com");
    expect(dev.status).toBe(302);
  });
});

describe("the development provider and settings", () => {
  it("is off with DEV_OIDC=false, and refused in production", async () => {
    const off = await startNode({ env: { DEV_OIDC: "false" } });
    expect(await (await off.fetch("/login")).text()).not.toContain("Dev OIDC");
    expect((await off.fetch("/dev/oidc/.well-known/openid-configuration")).status).toBe(404);

    const prod = await startNode({
      env: { NODE_ENV: "production", DEV_OIDC: "true", SMTP_URL: "smtp://127.0.0.1:2525" },
      waitUntil: "none",
    });
    expect(await prod.waitForExit()).toBe(1);
    expect(prod.log).toContain("config: DEV_OIDC cannot be enabled in production");

    const half = await startNode({ env: { GITHUB_CLIENT_ID: "only-the-id" }, waitUntil: "none" });
    expect(await half.waitForExit()).toBe(1);
    expect(half.log).toContain("config: GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET go together");
  });

  it("is not served in production", async () => {
    const prod = await startNode({ env: { NODE_ENV: "production", SMTP_URL: "smtp://127.0.0.1:2525" } });
    expect((await prod.fetch("/dev/oidc/.well-known/openid-configuration")).status).toBe(404);
    const login = await (await prod.fetch("/login")).text();
    expect(login).not.toContain("Dev OIDC");
    expect((await prod.fetch("/auth/dev", form({}))).status).toBe(404);
  });
});
