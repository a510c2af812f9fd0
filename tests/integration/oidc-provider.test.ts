// PwdlessGs as an OpenID provider, on one real server process with real SMTP: discovery, keys,
// the code flow with PKCE, refresh rotation and reuse detection, sign-out reaching the apps.
import { createRemoteJWKSet, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CookieJar } from "../support/cookie-jar";
import { form } from "../support/flows";
import { startNode, stopAllNodes, testSecret, type NodeProcess } from "../support/node";
import {
  SECRET,
  authorize,
  clientsFile,
  codeFlow,
  codeGrant,
  pkce,
  refreshGrant,
  signInWithCode,
  standardClients,
  token,
  userinfo,
  visit,
} from "../support/oidc";
import { TestSmtpServer } from "../support/smtp";

const ADMIN_TOKEN = "admin-token-for-the-provider-tests-0123456789";

describe("Sign in with PwdlessGs, one node", () => {
  let smtp: TestSmtpServer;
  let node: NodeProcess;
  const previousSecret = testSecret();

  beforeAll(async () => {
    smtp = await new TestSmtpServer().start();
    node = await startNode({
      env: {
        SMTP_URL: smtp.url,
        OIDC_PROVIDER_CLIENTS_FILE: clientsFile(standardClients()),
        SECRET_KEY_BASE_PREVIOUS: previousSecret,
        ADMIN_API_TOKEN: ADMIN_TOKEN,
      },
    });
  });

  afterAll(async () => {
    await stopAllNodes();
    await smtp.stop();
  });

  it("publishes discovery at APP_URL with its endpoints, and RS256 and EdDSA keys for this secret and the previous one", async () => {
    const res = await node.fetch("/.well-known/openid-configuration");
    expect(res.status).toBe(200);
    const meta = (await res.json()) as Record<string, unknown>;
    expect(meta.issuer).toBe(node.url);
    expect(meta.token_endpoint).toBe(`${node.url}/oidc/token`);
    expect(meta.end_session_endpoint).toBe(`${node.url}/oidc/session/end`);
    expect(meta.device_authorization_endpoint).toBe(`${node.url}/oidc/device/auth`);
    expect(meta.code_challenge_methods_supported).toEqual(["S256"]);
    expect(meta.scopes_supported).toEqual(expect.arrayContaining(["openid", "email", "profile", "offline_access"]));
    const jwks = (await (await node.fetch("/oidc/jwks")).json()) as {
      keys: { alg: string; kid: string; d?: string }[];
    };
    expect(jwks.keys.map((k) => k.alg).sort()).toEqual(["EdDSA", "EdDSA", "RS256", "RS256"]);
    expect(jwks.keys.every((k) => k.d === undefined)).toBe(true);
  });

  it("signs a person in with the emailed code: ID token with sub = /api/me's id and the address, userinfo, refresh", async () => {
    const jar = new CookieJar();
    const email = "ada@example.com";
    const { code, verifier, redirectUri } = await codeFlow(node, jar, { email, smtp });
    const tokens = await token(node, codeGrant({ code, verifier, redirectUri }));
    expect(tokens.status).toBe(200);
    const { payload } = await jwtVerify(
      String(tokens.body.id_token),
      createRemoteJWKSet(new URL("/oidc/jwks", node.url)),
      { issuer: node.url, audience: "web" },
    );
    const me = (await (await visit(node, jar, "/auth/refresh", { method: "POST" })).json()) as { access_token: string };
    const who = (await (
      await node.fetch("/api/me", { headers: { Authorization: `Bearer ${me.access_token}` } })
    ).json()) as {
      id: string;
    };
    expect(payload.sub).toBe(who.id);
    expect(payload.email).toBe(email);
    expect(payload.email_verified).toBe(true);
    const info = await userinfo(node, String(tokens.body.access_token));
    expect(info.status).toBe(200);
    expect(await info.json()).toMatchObject({ sub: who.id, email });

    const refreshed = await token(node, refreshGrant(tokens.body.refresh_token));
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.refresh_token).not.toBe(tokens.body.refresh_token);
  });

  it("a replayed refresh token revokes its whole family", async () => {
    const jar = new CookieJar();
    const { code, verifier, redirectUri } = await codeFlow(node, jar, { email: "replay@example.com", smtp });
    const first = await token(node, codeGrant({ code, verifier, redirectUri }));
    const second = await token(node, refreshGrant(first.body.refresh_token));
    expect(second.status).toBe(200);
    const replay = await token(node, refreshGrant(first.body.refresh_token));
    expect(replay.status).toBe(400);
    expect(replay.body.error).toBe("invalid_grant");
    const latest = await token(node, refreshGrant(second.body.refresh_token));
    expect(latest.body.error).toBe("invalid_grant");
    expect((await userinfo(node, String(second.body.access_token))).status).toBe(401);
  });

  it("sign out everywhere revokes the apps' refresh tokens", async () => {
    const jar = new CookieJar();
    const { code, verifier, redirectUri } = await codeFlow(node, jar, { email: "out@example.com", smtp });
    const tokens = await token(node, codeGrant({ code, verifier, redirectUri }));
    const out = await visit(node, jar, "/logout", form({ scope: "everywhere" }));
    expect(out.status).toBe(302);
    const refresh = await token(node, refreshGrant(tokens.body.refresh_token));
    expect(refresh.body.error).toBe("invalid_grant");
    expect((await userinfo(node, String(tokens.body.access_token))).status).toBe(401);
  });

  it("asks a third-party app's consent once, remembers it, and lets /account take it back", async () => {
    const jar = new CookieJar();
    await signInWithCode(node, jar, "consent@example.com", smtp);
    const { challenge } = pkce();
    const params = {
      client_id: "spa",
      response_type: "code",
      redirect_uri: "http://127.0.0.1:9/spa",
      scope: "openid email",
      code_challenge: challenge,
      code_challenge_method: "S256",
    };
    const first = await authorize(node, jar, params);
    expect(first.stoppedAt?.status).toBe(200);
    expect(first.stoppedAt?.body).toContain("Allow Partner App to use your account?");
    const uid = /\/oidc\/interaction\/([A-Za-z0-9_-]+)/.exec(first.stoppedAt!.path)![1]!;
    const allowed = await visit(node, jar, `/oidc/interaction/${uid}/consent`, form({ decision: "allow" }));
    expect(allowed.status).toBe(303);
    const again = await authorize(node, jar, params);
    expect(again.redirect?.searchParams.get("code")).toBeTruthy();

    const account = await (await visit(node, jar, "/account")).text();
    expect(account).toContain("Partner App");
    const revoked = await visit(node, jar, "/account/apps", form({ clientId: "spa" }));
    expect(revoked.status).toBe(302);
    const third = await authorize(node, jar, params);
    expect(third.stoppedAt?.body).toContain("Allow Partner App to use your account?");
  });

  it("shows its pages in the person's language, in the app's layout and stylesheet", async () => {
    const german = await node.fetch("/device", { headers: { "Accept-Language": "de-AT,de;q=0.9,en;q=0.5" } });
    const page = await german.text();
    expect(page).toContain('<html lang="de"');
    expect(page).toContain("Auf einem Gerät anmelden");
    expect(page).toMatch(/<link rel="stylesheet" href="\/assets\/styles-[^"]+\.css">/);
    expect(german.headers.get("content-security-policy")).toContain("script-src 'self'");
    const english = await (await node.fetch("/device")).text();
    expect(english).toContain("Sign in on a device");
  });

  it("erasing a person (admin API) ends their apps' tokens on every path", async () => {
    const jar = new CookieJar();
    const tokens = await token(node, codeGrant(await codeFlow(node, jar, { email: "erased@example.com", smtp })));
    const me = (await userinfo(node, String(tokens.body.access_token))).json() as Promise<{ sub: string }>;
    const { sub } = await me;
    const erase = await node.fetch(`/api/admin/users/${sub}`, {
      method: "DELETE",
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(erase.status).toBe(200);
    expect((await userinfo(node, String(tokens.body.access_token))).status).toBe(401);
    expect((await token(node, refreshGrant(tokens.body.refresh_token))).body.error).toBe("invalid_grant");
  });

  it("refuses a wrong client secret with invalid_client", async () => {
    const res = await token(
      node,
      { grant_type: "refresh_token", refresh_token: "x".repeat(43) },
      { id: "web", secret: `${SECRET}x` },
    );
    expect(res.status).toBe(401);
    expect(res.body.error).toBe("invalid_client");
  });

  it("logs JSON lines only (no library notices), and never a token or a client secret", () => {
    const lines = node.output;
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow();
    expect(node.log).not.toContain(SECRET);
    expect(node.log).toContain("OpenID provider loaded");
  });
});

describe("the provider's settings", () => {
  afterAll(() => stopAllNodes());

  it("is off without OIDC_PROVIDER_CLIENTS_FILE: its paths answer 404", async () => {
    const node = await startNode();
    for (const path of ["/.well-known/openid-configuration", "/oidc/auth?client_id=x", "/oidc/jwks", "/device"]) {
      expect((await node.fetch(path)).status, path).toBe(404);
    }
    const post = await node.fetch("/oidc/token", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: "grant_type=refresh_token",
    });
    // the app's own answer for a path it does not have: 404, or 405 for a method no route takes
    expect([404, 405]).toContain(post.status);
    expect(await post.text()).not.toContain("invalid_grant");
  });

  it("refuses to start on a bad clients file, one line per problem, exit 1", async () => {
    const file = clientsFile([
      { client_id: "no-secret", redirect_uris: ["https://app.example.com/cb"] },
      { client_id: "plain-http", client_secret: SECRET, redirect_uris: ["http://app.example.com/cb"] },
      { client_id: "typo", client_secret: SECRET, redirect_uris: ["https://app.example.com/cb"], redirect_uri: "x" },
    ]);
    const node = await startNode({
      waitUntil: "none",
      env: {
        NODE_ENV: "production",
        APP_URL: "https://login.example.com",
        SMTP_URL: "smtp://127.0.0.1:9",
        OIDC_PROVIDER_CLIENTS_FILE: file,
      },
    });
    expect(await node.waitForExit()).toBe(1);
    const problems = node.output.filter((line) => line.startsWith("config: OIDC_PROVIDER_CLIENTS_FILE"));
    expect(problems).toHaveLength(3);
    expect(problems[0]).toContain('client "no-secret": client_secret of at least 32 characters is required');
    expect(problems[1]).toContain(
      'client "plain-http": redirect_uris[0] "http://app.example.com/cb" must be https in production',
    );
    expect(problems[2]).toContain('client "typo": unknown field "redirect_uri"');
    expect(node.log).not.toContain(SECRET);
  });
});

describe("acknowledged means kept", () => {
  afterAll(() => stopAllNodes());

  it("tokens answered before a kill -9 work after the restart, and a used code stays used", async () => {
    const smtp = await new TestSmtpServer().start();
    try {
      const env = { SMTP_URL: smtp.url, OIDC_PROVIDER_CLIENTS_FILE: clientsFile(standardClients()) };
      const first = await startNode({ env });
      const { code, verifier, redirectUri } = await codeFlow(first, new CookieJar(), {
        email: "kept@example.com",
        smtp,
      });
      const fields = codeGrant({ code, verifier, redirectUri });
      const tokens = await token(first, fields);
      expect(tokens.status).toBe(200);
      await first.stop("SIGKILL");
      const again = await startNode({ env: { ...first.env }, port: first.port, dataDir: first.dataDir });
      const refreshed = await token(again, refreshGrant(tokens.body.refresh_token));
      expect(refreshed.status, JSON.stringify(refreshed.body)).toBe(200);
      expect((await token(again, fields)).body.error).toBe("invalid_grant");
    } finally {
      await smtp.stop();
    }
  });
});
