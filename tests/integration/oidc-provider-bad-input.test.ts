// Bad input to the OpenID provider gets the right OAuth error (RFC 6749, 7009, 7662, 8628,
// OpenID Connect) or a page for people, never a 5xx, and never a redirect to an unchecked URI.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CookieJar } from "../support/cookie-jar";
import { startNode, stopAllNodes, type NodeProcess } from "../support/node";
import {
  SECRET,
  basic,
  clientsFile,
  codeFlow,
  pkce,
  pollDevice,
  refreshGrant,
  standardClients,
  token,
  userinfo,
  visit,
} from "../support/oidc";
import { TestSmtpServer } from "../support/smtp";

const REDIRECT = "http://127.0.0.1:9/callback";

describe("bad input to the OpenID provider", () => {
  let smtp: TestSmtpServer;
  let node: NodeProcess;
  const jar = new CookieJar();

  beforeAll(async () => {
    smtp = await new TestSmtpServer().start();
    node = await startNode({
      env: {
        SMTP_URL: smtp.url,
        OIDC_PROVIDER_CLIENTS_FILE: clientsFile(standardClients(REDIRECT)),
      },
    });
  });

  afterAll(async () => {
    await stopAllNodes();
    await smtp.stop();
  });

  const authParams = (overrides: Record<string, string | undefined> = {}) => {
    const params: Record<string, string> = {
      client_id: "web",
      response_type: "code",
      redirect_uri: REDIRECT,
      scope: "openid email",
      code_challenge: pkce().challenge,
      code_challenge_method: "S256",
      state: "s1",
    };
    for (const [key, value] of Object.entries(overrides)) {
      if (value === undefined) delete params[key];
      else params[key] = value;
    }
    return `/oidc/auth?${new URLSearchParams(params)}`;
  };

  it("answers an unknown client or an unregistered redirect URI with a page of ours, never a redirect", async () => {
    const cases = [
      authParams({ client_id: "nobody" }),
      authParams({ redirect_uri: "https://evil.example/callback" }),
      // exact match: a trailing slash, another port, an added query are other URIs
      authParams({ redirect_uri: `${REDIRECT}/` }),
      authParams({ redirect_uri: "http://127.0.0.1:10/callback" }),
      authParams({ redirect_uri: `${REDIRECT}?x=1` }),
      authParams({ client_id: undefined }),
    ];
    for (const path of cases) {
      const res = await node.fetch(path, { headers: { Accept: "text/html" } });
      expect(res.status, path).toBe(400);
      expect(res.headers.get("location"), path).toBeNull();
      const page = await res.text();
      expect(page, path).toContain("This sign-in cannot go on");
      expect(page).not.toContain("evil.example/callback?");
    }
  });

  it("sends other authorization errors back to the registered redirect URI, as OAuth says", async () => {
    const cases: [string, string][] = [
      [authParams({ response_type: "token" }), "unsupported_response_type"],
      [authParams({ response_type: undefined }), "invalid_request"],
      [authParams({ code_challenge_method: "plain" }), "invalid_request"],
      [
        authParams({
          client_id: "spa",
          redirect_uri: "http://127.0.0.1:9/spa",
          code_challenge: undefined,
          code_challenge_method: undefined,
        }),
        "invalid_request",
      ],
      [authParams({ prompt: "none" }), "login_required"],
    ];
    for (const [path, error] of cases) {
      const res = await node.fetch(path);
      expect(res.status, path).toBe(303);
      const to = new URL(res.headers.get("location")!);
      expect(`${to.origin}${to.pathname}`, path).toMatch(/^http:\/\/127\.0\.0\.1:9\/(callback|spa)$/);
      // response_type=token would answer in the fragment: its error goes there too
      const answer = to.hash ? new URLSearchParams(to.hash.slice(1)) : to.searchParams;
      expect(answer.get("error"), path).toBe(error);
      expect(answer.get("iss")).toBe(node.url);
    }
  });

  it("refuses bad token requests with the right error and status, as JSON", async () => {
    const { code, verifier } = await codeFlow(node, jar, { email: "bad@example.com", smtp }, { scope: "openid email" });
    const cases: [Record<string, string>, { id: string; secret?: string } | undefined, number, string][] = [
      [{ code, redirect_uri: REDIRECT }, undefined, 400, "invalid_request"],
      [{ grant_type: "password", username: "a", password: "b" }, undefined, 400, "unsupported_grant_type"],
      [
        { grant_type: "authorization_code", code, code_verifier: verifier, redirect_uri: REDIRECT },
        { id: "nobody", secret: SECRET },
        401,
        "invalid_client",
      ],
      [{ grant_type: "authorization_code", code, redirect_uri: REDIRECT }, undefined, 400, "invalid_grant"],
      [
        { grant_type: "authorization_code", code, code_verifier: pkce().verifier, redirect_uri: REDIRECT },
        undefined,
        400,
        "invalid_grant",
      ],
      [
        { grant_type: "authorization_code", code, code_verifier: verifier, redirect_uri: `${REDIRECT}/` },
        undefined,
        400,
        "invalid_grant",
      ],
      [
        { grant_type: "authorization_code", code: "not-a-code", code_verifier: verifier, redirect_uri: REDIRECT },
        undefined,
        400,
        "invalid_grant",
      ],
      [{ grant_type: "refresh_token", refresh_token: "nope" }, undefined, 400, "invalid_grant"],
      [
        { grant_type: "urn:ietf:params:oauth:grant-type:device_code", device_code: "nope" },
        { id: "cli" },
        400,
        "invalid_grant",
      ],
    ];
    for (const [fields, client, status, error] of cases) {
      const answer = await token(node, fields, client);
      expect(answer.status, JSON.stringify(fields)).toBe(status);
      expect(answer.body.error, JSON.stringify(fields)).toBe(error);
    }
    // the code survived the refused attempts: a wrong verifier is not a use
    const right = await token(node, {
      grant_type: "authorization_code",
      code,
      code_verifier: verifier,
      redirect_uri: REDIRECT,
    });
    expect(right.status).toBe(200);
    const again = await token(node, {
      grant_type: "authorization_code",
      code,
      code_verifier: verifier,
      redirect_uri: REDIRECT,
    });
    expect(again.body.error).toBe("invalid_grant");
  });

  it("refuses an expired code", async () => {
    // a node whose codes live one second, so expiry shows without waiting a minute
    const quick = await startNode({
      env: {
        SMTP_URL: smtp.url,
        OIDC_PROVIDER_CLIENTS_FILE: clientsFile(standardClients(REDIRECT)),
        OIDC_PROVIDER_CODE_TTL_SECONDS: "1",
      },
    });
    const { code, verifier } = await codeFlow(
      quick,
      new CookieJar(),
      { email: "slow@example.com", smtp },
      { scope: "openid" },
    );
    await new Promise((r) => setTimeout(r, 1_500));
    const answer = await token(quick, {
      grant_type: "authorization_code",
      code,
      code_verifier: verifier,
      redirect_uri: REDIRECT,
    });
    expect(answer.status).toBe(400);
    expect(answer.body.error).toBe("invalid_grant");
    await quick.stop();
  });

  it("answers malformed bodies with invalid_request or 413, never a 5xx", async () => {
    const post = (body: string, type: string, headers: Record<string, string> = {}) =>
      node.fetch("/oidc/token", {
        method: "POST",
        headers: { "Content-Type": type, Authorization: basic("web"), ...headers },
        body,
      });
    const answers: [Response, string][] = [
      [await post('{"grant_type":"refresh_token"}', "application/json"), "invalid_request"],
      [await post("grant_type=%ZZ", "application/x-www-form-urlencoded"), "unsupported_grant_type"],
      [
        await post(
          "grant_type=refresh_token&grant_type=refresh_token&refresh_token=x",
          "application/x-www-form-urlencoded",
        ),
        "invalid_request",
      ],
      // past oidc-provider's own 56 KiB body limit, below ours
      [
        await post(`grant_type=refresh_token&refresh_token=${"x".repeat(60_000)}`, "application/x-www-form-urlencoded"),
        "invalid_request",
      ],
    ];
    for (const [res, error] of answers) {
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: string }).error).toBe(error);
    }
    const huge = await post(`refresh_token=${"x".repeat(70 * 1024)}`, "application/x-www-form-urlencoded");
    expect(huge.status).toBe(413);
  });

  it("refuses bad access tokens at userinfo with 401 and WWW-Authenticate", async () => {
    for (const value of ["", "garbage", "x".repeat(43)]) {
      const res = value ? await userinfo(node, value) : await node.fetch("/oidc/me");
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toMatch(/^Bearer /);
    }
  });

  it("lets only confidential clients introspect, and a client revoke only its own tokens", async () => {
    const { code, verifier } = await codeFlow(
      node,
      jar,
      { email: "bad@example.com", smtp },
      { scope: "openid offline_access" },
    );
    const tokens = await token(node, {
      grant_type: "authorization_code",
      code,
      code_verifier: verifier,
      redirect_uri: REDIRECT,
    });
    const introspect = (client: string, secret?: string) =>
      node.fetch("/oidc/token/introspection", {
        method: "POST",
        headers: {
          "Content-Type": "application/x-www-form-urlencoded",
          ...(secret ? { Authorization: basic(client, secret) } : {}),
        },
        body: new URLSearchParams({
          token: String(tokens.body.access_token),
          ...(secret ? {} : { client_id: client }),
        }).toString(),
      });
    const confidential = await introspect("web", SECRET);
    expect(confidential.status).toBe(200);
    expect(await confidential.json()).toMatchObject({ active: true, client_id: "web" });
    const publicClient = await introspect("cli");
    expect(publicClient.status).toBeLessThan(500);
    expect((await publicClient.json()) as { active?: boolean; error?: string }).not.toMatchObject({ active: true });

    const revokeAsCli = await node.fetch("/oidc/token/revocation", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: String(tokens.body.refresh_token), client_id: "cli" }).toString(),
    });
    expect(revokeAsCli.status).toBeLessThan(500);
    // still usable: another client cannot revoke it
    const refreshed = await token(node, refreshGrant(tokens.body.refresh_token));
    expect(refreshed.status).toBe(200);
  });

  it("answers bad device codes and expired interactions with pages, and logout to an unregistered URI without redirecting", async () => {
    const page = await visit(node, new CookieJar(), "/device");
    expect(page.status).toBe(200);
    const pageJar = new CookieJar();
    const first = await visit(node, pageJar, "/device");
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(await first.text())![1]!;
    const wrong = await visit(node, pageJar, "/device", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ xsrf, user_code: "BCDF-GHJK" }).toString(),
    });
    expect(wrong.status).toBeLessThan(500);
    expect(await wrong.text()).toContain("That code is not right");
    expect((await pollDevice(node, "x".repeat(43))).body.error).toBe("invalid_grant");

    const expired = await node.fetch("/oidc/interaction/abcdefghijklmnop");
    expect(expired.status).toBe(400);
    expect(await expired.text()).toContain("This sign-in has expired");
    const consent = await node.fetch("/oidc/interaction/abcdefghijklmnop/consent", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: "decision=allow",
    });
    expect(consent.status).toBe(400);

    const logout = await node.fetch(
      `/oidc/session/end?${new URLSearchParams({ client_id: "web", post_logout_redirect_uri: "https://evil.example/" })}`,
      { headers: { Accept: "text/html" } },
    );
    expect(logout.status).toBe(400);
    expect(logout.headers.get("location")).toBeNull();
    expect((await node.fetch("/oidc/nothing-here")).status).toBe(404);
  });

  it("leaves cross-site token requests to the provider's CORS rules, but refuses a cross-site POST to the consent page", async () => {
    const crossSite = { "Sec-Fetch-Site": "cross-site", Origin: "https://evil.example" };
    const tokenPost = await node.fetch("/oidc/token", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", Authorization: basic("web"), ...crossSite },
      body: "grant_type=refresh_token&refresh_token=nope",
    });
    // not our 403 page: an OAuth answer (this origin is none of the web app's redirect URIs)
    expect(tokenPost.status).toBe(400);
    expect(await tokenPost.json()).toMatchObject({
      error: "invalid_request",
      error_description: expect.stringContaining("origin"),
    });
    const spaOrigin = await node.fetch("/oidc/token", {
      method: "POST",
      headers: {
        "Content-Type": "application/x-www-form-urlencoded",
        "Sec-Fetch-Site": "cross-site",
        Origin: "http://127.0.0.1:9",
      },
      body: "grant_type=refresh_token&refresh_token=nope&client_id=spa",
    });
    expect(spaOrigin.headers.get("access-control-allow-origin")).toBe("http://127.0.0.1:9");
    expect(((await spaOrigin.json()) as { error: string }).error).toBe("invalid_grant");
    const consent = await node.fetch("/oidc/interaction/abcdefghijklmnop/consent", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", ...crossSite },
      body: "decision=allow",
    });
    expect(consent.status).toBe(403);
  });

  it("never answered with a 5xx, and logged no server error", () => {
    expect(node.log).not.toMatch(/"level":"error"/);
  });
});
