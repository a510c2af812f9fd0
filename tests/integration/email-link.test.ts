import { sealData } from "iron-session";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deriveKeys } from "../../server/keys";
import { CookieJar } from "../support/cookie-jar";
import { accessToken, browse, form, pathOf, requestLink, signIn } from "../support/flows";
import { startNode, stopAllNodes, testSecret, type NodeProcess } from "../support/node";
import { TestSmtpServer } from "../support/smtp";
import { waitFor } from "../support/wait";

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe("sign in with an email link, over HTTP, against a real server process and real SMTP", () => {
  const smtp = new TestSmtpServer();
  let node: NodeProcess;
  const secret = testSecret();

  beforeAll(async () => {
    await smtp.start();
    node = await startNode({
      env: {
        SMTP_URL: smtp.url,
        SECRET_KEY_BASE: secret,
        ACCESS_TOKEN_TTL_SECONDS: "2",
        RATE_LIMIT_REQUESTS_PER_IP: "1000",
        RATE_LIMIT_EMAILS_PER_ADDRESS: "100",
      },
    });
  });
  afterAll(async () => {
    await stopAllNodes();
    await smtp.stop();
  });

  it("walks the whole flow: request, email, confirm page, sign-in, token, API, refresh, sign-out", async () => {
    const jar = new CookieJar();
    const login = await browse(node, jar, "/login");
    expect(login.status).toBe(200);
    expect(await login.text()).toContain('name="email"');

    const asked = await browse(
      node,
      jar,
      "/login",
      form({ email: "  Ada@Example.COM ", redirectTo: "/account?tab=1" }),
    );
    expect(asked.status).toBe(302);
    expect(asked.headers.get("location")).toBe("/login/sent");
    const sent = await browse(node, jar, "/login/sent");
    expect(await sent.text()).toContain("Check your email");

    const mail = await waitFor("the email", () => smtp.to("ada@example.com")[0]);
    // the code is in the subject, so a phone's notification shows it
    expect(mail.subject).toMatch(/^[0-9]{6} is your sign-in code for PwdlessGs$/);
    expect(mail.html).toContain("<a href=");
    const link = /http:\/\/\S+/.exec(mail.text)![0];
    expect(link.startsWith(`${node.url}/auth/email/callback?token=`)).toBe(true);

    // opening the link shows who would sign in, and signs nobody in (mail scanners prefetch)
    const confirm = await browse(node, jar, pathOf(link));
    expect(confirm.status).toBe(200);
    expect(confirm.headers.get("referrer-policy")).toBe("no-referrer");
    expect(await confirm.text()).toContain("Sign in as ada@example.com?");
    expect(jar.get("pwdless_session")).toBeUndefined();

    const signedIn = await browse(node, jar, pathOf(link), { method: "POST" });
    expect(signedIn.status).toBe(302);
    expect(signedIn.headers.get("location")).toBe("/account?tab=1");
    const setCookie = signedIn.headers.getSetCookie().find((c) => c.startsWith("pwdless_session="))!;
    expect(setCookie).toMatch(/HttpOnly/i);
    expect(setCookie).toMatch(/SameSite=Lax/i);
    expect(setCookie).toMatch(/Path=\//);

    const account = await browse(node, jar, "/account");
    expect(account.status).toBe(200);

    const refresh = await browse(node, jar, "/auth/refresh", { method: "POST" });
    expect(refresh.status).toBe(200);
    const body = (await refresh.json()) as { access_token: string; token_type: string; expires_in: number };
    expect(body.token_type).toBe("Bearer");
    expect(body.expires_in).toBe(2);

    const me = await node.fetch("/api/me", { headers: { Authorization: `Bearer ${body.access_token}` } });
    expect(me.status).toBe(200);
    const user = (await me.json()) as { id: string; email: string };
    expect(user.email).toBe("ada@example.com");
    expect(user.id).toMatch(UUID_V4);

    // the token alone, without the cookie, stops working once it expires
    await waitFor("the token to expire", async () => {
      const res = await node.fetch("/api/me", { headers: { Authorization: `Bearer ${body.access_token}` } });
      return res.status === 401 ? res : undefined;
    });
    // with the cookie, the expired token is served and replaced transparently
    const renewed = await browse(node, jar, "/api/me", { headers: { Authorization: `Bearer ${body.access_token}` } });
    expect(renewed.status).toBe(200);
    const fresh = renewed.headers.get("x-access-token");
    expect(fresh).toBeTruthy();
    const withFresh = await node.fetch("/api/me", { headers: { Authorization: `Bearer ${fresh}` } });
    expect(withFresh.status).toBe(200);

    // a second sign-in gives the same user
    const again = await signIn(node, "ada@example.com", smtp);
    const token2 = await accessToken(node, again);
    const me2 = (await (await node.fetch("/api/me", { headers: { Authorization: `Bearer ${token2}` } })).json()) as {
      id: string;
    };
    expect(me2.id).toBe(user.id);

    // sign out: the cookie (and any copy of it) and this session's tokens stop working
    const copy = jar.clone();
    const out = await browse(node, jar, "/logout", form({}));
    expect(out.status).toBe(302);
    expect(jar.get("pwdless_session")).toBeUndefined();
    const replay = await browse(node, copy, "/auth/refresh", { method: "POST" });
    expect(replay.status).toBe(401);
    expect(((await replay.json()) as { error: string }).error).toBe("unauthorized");
    const afterOut = await node.fetch("/api/me", { headers: { Authorization: `Bearer ${fresh}` } });
    expect(afterOut.status).toBe(401);
    expect(afterOut.headers.get("www-authenticate")).toContain('error="invalid_token"');
    const page = await browse(node, copy, "/account");
    expect(page.status).toBe(302);
    expect(page.headers.get("location")).toContain("/login");
    // the other sign-in is untouched
    expect((await browse(node, again, "/auth/refresh", { method: "POST" })).status).toBe(200);
  });

  it("answers the same for known and unknown addresses", async () => {
    await signIn(node, "known@example.com", smtp);
    const known = await browse(node, new CookieJar(), "/login", form({ email: "known@example.com" }));
    const unknown = await browse(node, new CookieJar(), "/login", form({ email: "nobody@example.com" }));
    expect(known.status).toBe(unknown.status);
    expect(known.headers.get("location")).toBe(unknown.headers.get("location"));
    expect(await known.text()).toBe(await unknown.text());
    await waitFor(
      "both mails",
      () => smtp.to("nobody@example.com").length === 1 && smtp.to("known@example.com").length === 2,
    );
  });

  it("uses a link once, and refuses an older link once a newer one is used", async () => {
    const jar = new CookieJar();
    const first = await requestLink(node, jar, "once@example.com", smtp);
    const second = await requestLink(node, jar, "once@example.com", smtp);
    expect((await browse(node, jar, pathOf(second), { method: "POST" })).status).toBe(302);

    const reused = await browse(node, jar, pathOf(second), { method: "POST" });
    expect(reused.status).toBe(410);
    const reusedPage = await reused.text();
    expect(reusedPage).toContain("already used");
    expect(reusedPage).toContain("Send a new link");

    const older = await browse(node, jar, pathOf(first));
    expect(older.status).toBe(410);
    expect(await older.text()).toContain("A newer link was used");
  });

  it("only signs in in the browser that asked for the link, and explains what to do elsewhere", async () => {
    const asker = new CookieJar();
    const link = await requestLink(node, asker, "twobrowsers@example.com", smtp);
    const other = new CookieJar();
    const shown = await browse(node, other, pathOf(link));
    expect(shown.status).toBe(403);
    const text = await shown.text();
    expect(text).toContain("browser where you asked for it");
    expect(text).toContain("Send a new link");
    const posted = await browse(node, other, pathOf(link), { method: "POST" });
    expect(posted.status).toBe(403);
    expect(other.get("pwdless_session")).toBeUndefined();
    // the refused attempt did not spend the link: the right browser can still use it
    expect((await browse(node, asker, pathOf(link), { method: "POST" })).status).toBe(302);
  });

  it("builds links from APP_URL only, whatever Host the request claims", async () => {
    const jar = new CookieJar();
    const res = await browse(node, jar, "/login", {
      ...form({ email: "host@example.com" }),
      headers: {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Proto": "https",
      },
    });
    expect(res.status).toBe(302);
    const mail = await waitFor("the email", () => smtp.to("host@example.com")[0]);
    expect(mail.text).toContain(`${node.url}/auth/email/callback?token=`);
    expect(mail.text).not.toContain("evil.example");
  });

  it("refuses changed, truncated and expired links with a page offering a new one", async () => {
    const jar = new CookieJar();
    const link = await requestLink(node, jar, "tamper@example.com", smtp);
    const url = new URL(link);
    const token = url.searchParams.get("token")!;
    const flip = token[40] === "A" ? "B" : "A";
    for (const bad of [
      `${token.slice(0, 40)}${flip}${token.slice(41)}`,
      token.slice(0, token.length - 10),
      "",
      "not-a-token",
    ]) {
      const res = await browse(node, jar, `/auth/email/callback?token=${encodeURIComponent(bad)}`, { method: "POST" });
      expect(res.status).toBe(400);
      expect(await res.text()).toContain("This link does not work");
      expect(jar.get("pwdless_session")).toBeUndefined();
    }
    // sealed with the real key but issued 20 minutes ago: expired
    const keys = deriveKeys(secret);
    const stale = await sealData(
      JSON.stringify({ e: "tamper@example.com", c: Date.now() - 20 * 60_000, i: "old-link-id-1", n: "x", k: "123456" }),
      {
        password: { [keys.sealId]: keys.link },
        ttl: 0,
      },
    );
    const expired = await browse(node, jar, `/auth/email/callback?token=${encodeURIComponent(stale)}`);
    expect(expired.status).toBe(410);
    expect(await expired.text()).toContain("This link has expired");
    // the genuine link still works
    expect((await browse(node, jar, pathOf(link), { method: "POST" })).status).toBe(302);
  });

  it("refuses bad addresses with a form error and sends nothing", async () => {
    const before = smtp.messages.length;
    const cases = [
      "not-an-address",
      "victim@example.com\r\nBcc: everyone@example.com",
      "victim@example.com\nSubject: hi",
      `${"a".repeat(290)}@example.com`,
      "",
      "a@b",
      "<script>@example.com",
    ];
    for (const email of cases) {
      const res = await browse(node, new CookieJar(), "/login", form({ email }));
      expect(res.status, JSON.stringify(email)).toBe(400);
      const html = await res.text();
      expect(html).toContain('role="alert"');
      expect(html).not.toContain("<script>@");
    }
    // nothing went out, even later
    await new Promise((r) => setTimeout(r, 300));
    expect(smtp.messages.length).toBe(before);
  });

  it("signs out requests with tampered, foreign or garbage cookies and tokens, never a 5xx", async () => {
    const jar = await signIn(node, "cookies@example.com", smtp);
    const good = jar.get("pwdless_session")!;
    const token = await accessToken(node, jar);
    const foreignKeys = deriveKeys(testSecret());
    const foreignCookie = await sealData(
      { uid: "00000000-0000-4000-8000-000000000000", sid: "00000000-0000-4000-8000-000000000000", iat: Date.now() },
      { password: { [foreignKeys.sealId]: foreignKeys.cookie }, ttl: 3600 },
    );
    const cookies = [
      `${good.slice(0, -5)}AAAAA`,
      good.slice(0, 30),
      foreignCookie,
      "Fe26.2**garbage",
      "%%%",
      "x".repeat(5000),
    ];
    for (const cookie of cookies) {
      const bad = new CookieJar().set("pwdless_session", cookie);
      const refresh = await browse(node, bad, "/auth/refresh", { method: "POST" });
      expect(refresh.status).toBe(401);
      const account = await browse(node, bad, "/account");
      expect(account.status).toBe(302);
    }
    const [h, p, s] = token.split(".");
    const tokens = [
      `${h}.${p}.${s!.slice(0, -3)}AAA`,
      `${h}.${Buffer.from(JSON.stringify({ sub: "x", sid: "y", exp: 9999999999 })).toString("base64url")}.${s}`,
      `${Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url")}.${p}.`,
      "garbage",
      "a.b.c",
    ];
    for (const bad of tokens) {
      const res = await node.fetch("/api/me", { headers: { Authorization: `Bearer ${bad}` } });
      expect(res.status, bad).toBe(401);
      expect(res.headers.get("content-type")).toContain("application/json");
      expect(((await res.json()) as { error: string }).error).toBe("invalid_token");
    }
    const missing = await node.fetch("/api/me");
    expect(missing.status).toBe(401);
    expect(missing.headers.get("www-authenticate")).toContain("Bearer");
  });

  it("refuses cross-site posts, oversized bodies, and redirects off the site", async () => {
    const crossOrigin = await node.fetch("/login", {
      ...form({ email: "csrf@example.com" }),
      headers: { "Content-Type": "application/x-www-form-urlencoded", Origin: "https://evil.example" },
    });
    expect(crossOrigin.status).toBe(403);
    expect(await crossOrigin.text()).toContain("another site");
    const crossFetch = await node.fetch("/logout", { method: "POST", headers: { "Sec-Fetch-Site": "cross-site" } });
    expect(crossFetch.status).toBe(403);
    const apiCross = await node.fetch("/auth/refresh", { method: "POST", headers: { Origin: "null" } });
    expect(apiCross.status).toBe(403);
    expect(((await apiCross.json()) as { error: string }).error).toBe("forbidden");
    const sameOrigin = await node.fetch("/login", {
      ...form({ email: "csrf@example.com" }),
      headers: {
        "Content-Type": "application/x-www-form-urlencoded",
        Origin: node.url,
        "Sec-Fetch-Site": "same-origin",
      },
    });
    expect(sameOrigin.status).toBe(302);
    // a native form post from a no-referrer page says Origin: null, but fetch metadata says same-origin
    const nullOriginSameSite = await node.fetch("/login", {
      ...form({ email: "csrf@example.com" }),
      headers: { "Content-Type": "application/x-www-form-urlencoded", Origin: "null", "Sec-Fetch-Site": "same-origin" },
    });
    expect(nullOriginSameSite.status).toBe(302);
    // behind a proxy the forwarded host may differ from the origin: no 500 from Remix's own check
    const proxied = await node.fetch("/login", {
      ...form({ email: "csrf@example.com" }),
      headers: {
        "Content-Type": "application/x-www-form-urlencoded",
        Origin: node.url,
        "X-Forwarded-Host": "internal:8080",
      },
    });
    expect(proxied.status).toBe(302);

    const huge = await node.fetch("/login", { ...form({ email: "big@example.com", pad: "x".repeat(70 * 1024) }) });
    expect(huge.status).toBe(413);
    const hugeApi = await node.fetch("/auth/refresh", { method: "POST", body: "x".repeat(65 * 1024 + 1) });
    expect(hugeApi.status).toBe(413);
    expect(((await hugeApi.json()) as { error: string }).error).toBe("invalid_request");

    for (const target of [
      "//evil.example/x",
      "/\\evil.example",
      "https://evil.example",
      "https:evil.example",
      "%2F%2Fevil.example",
      "/%2F/evil.example",
      "javascript:alert(1)",
    ]) {
      const jar = new CookieJar();
      const link = await requestLink(node, jar, "redirect@example.com", smtp, { redirectTo: target });
      const res = await browse(node, jar, pathOf(link), { method: "POST" });
      expect(res.status).toBe(302);
      expect(res.headers.get("location"), target).toBe("/account");
    }
  });

  it("has no development mailbox when SMTP is configured, and answers health checks", async () => {
    expect((await node.fetch("/dev/mailbox")).status).toBe(404);
    expect((await node.fetch("/dev/mailbox.json")).status).toBe(404);
    expect((await node.fetch("/healthz")).status).toBe(200);
    const unknownApi = await node.fetch("/api/nothing-here");
    expect(unknownApi.status).toBe(404);
    expect(((await unknownApi.json()) as { error: string }).error).toBe("not_found");
    expect((await node.fetch("/no/such/page")).status).toBe(404);
  });
});
