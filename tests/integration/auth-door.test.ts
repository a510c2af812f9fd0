/**
 * App routes written the obvious way with the door (app/lib/auth): the example routes of the
 * README use nothing but the user, and the server still sends every cookie the session layer
 * re-sealed, so no route can sign anyone out by forgetting a header.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SessionCookieJar } from "#app/lib/session/session-cookie.server.ts";
import { deriveKeyRing } from "../../server/keys";
import { CookieJar } from "../support/cookie-jar";
import { accessToken, browse, form, pathOf, signIn } from "../support/flows";
import { startNode, stopAllNodes, type NodeProcess } from "../support/node";
import { linkIn, TestSmtpServer } from "../support/smtp";
import { waitFor } from "../support/wait";

const DAY = 24 * 3600_000;
const sleepUntil = (at: number) => new Promise((r) => setTimeout(r, Math.max(0, at - Date.now())));
const reuses = (node: NodeProcess) => node.events().filter((e) => e.audit === true && e.event === "refresh-reuse");

/** The node's own cookie sealing: to read a cookie's payload, and to make one sealed two days ago. */
function cookieJarOf(node: NodeProcess) {
  const keys = deriveKeyRing(node.env.SECRET_KEY_BASE!, []);
  const sealer = new SessionCookieJar(keys, { secure: false, maxAgeSeconds: 30 * 24 * 3600 });
  const read = (value: string) => sealer.read({ headers: { get: () => `pwdless_session=${value}` } });
  return {
    read,
    /** the same session's cookie as if sealed two days ago (it is due for its sliding renewal) */
    async aged(value: string): Promise<string> {
      const payload = (await read(value))!;
      const line = await sealer.write({ ...payload, iat: Date.now() - 2 * DAY });
      return line.slice("pwdless_session=".length, line.indexOf(";"));
    },
  };
}

describe("the door with 2-second access tokens and no grace for old cookies", () => {
  let node: NodeProcess;
  beforeAll(async () => {
    node = await startNode({ env: { ACCESS_TOKEN_TTL_SECONDS: "2", REFRESH_REUSE_GRACE_SECONDS: "0" } });
  });
  afterAll(stopAllNodes);

  it("50 API calls over 10 s with an expired token and the cookie, between page loads and refreshes: the session stays alive", async () => {
    const jar = await signIn(node, "steady@example.com");
    const expired = await accessToken(node, jar);
    const firstCopy = jar.clone(); // a copy of the cookie someone kept, shown at the end
    await waitFor(
      "the 2-second token to expire",
      async () =>
        (await node.fetch("/api/examples/whoami", { headers: { Authorization: `Bearer ${expired}` } })).status === 401,
      10_000,
      200,
    );
    const start = Date.now();
    let refreshes = 0;
    for (let i = 0; i < 50; i++) {
      await sleepUntil(start + i * 200);
      // like a browser: now and then a tab refreshes (the generation moves) or loads a page
      if (i % 10 === 5) {
        expect((await browse(node, jar, "/auth/refresh", { method: "POST" })).status).toBe(200);
        refreshes += 1;
      }
      if (i % 10 === 7) expect((await browse(node, jar, "/examples/private")).status).toBe(200);
      const res = await browse(node, jar, "/api/examples/whoami", { headers: { Authorization: `Bearer ${expired}` } });
      expect(res.status, `call ${i}`).toBe(200);
      expect(await res.json()).toMatchObject({ email: "steady@example.com" });
      // the route returned only JSON: the fresh token was added by the server
      expect(res.headers.get("x-access-token")).toMatch(/^eyJ/);
    }
    expect(Date.now() - start).toBeGreaterThanOrEqual(9_800);
    expect(refreshes).toBe(5);
    expect(reuses(node)).toEqual([]);
    expect((await browse(node, jar, "/account")).status).toBe(200);
    expect((await browse(node, jar, "/auth/refresh", { method: "POST" })).status).toBe(200);

    // theft detection still works: the copy kept before the refreshes ends the session everywhere
    const thief = await browse(node, firstCopy, "/examples/private");
    expect(thief.status).toBe(302);
    expect(reuses(node)).toHaveLength(1);
    expect((await browse(node, jar, "/account")).headers.get("location")).toBe("/login?redirectTo=%2Faccount");
  });

  it("a loader or API route that uses nothing but the user still renews a day-old cookie: page, data request, error answer", async () => {
    const jar = await signIn(node, "renewed@example.com");
    const cookies = cookieJarOf(node);
    const renewed = async (res: Response) => {
      const current = (await cookies.read(jar.get("pwdless_session")!))!;
      const line = res.headers.getSetCookie().find((c) => c.startsWith("pwdless_session="));
      expect(line, `a renewed cookie on ${res.url}`).toBeDefined();
      const payload = (await cookies.read(line!.slice("pwdless_session=".length, line!.indexOf(";"))))!;
      // the same session and generation, sealed now
      expect(payload).toMatchObject({ sid: current.sid, uid: current.uid, gen: current.gen });
      expect(Date.now() - payload.iat).toBeLessThan(60_000);
    };
    const aged = async () => new CookieJar().set("pwdless_session", await cookies.aged(jar.get("pwdless_session")!));

    const page = await browse(node, await aged(), "/examples/welcome");
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/Welcome back, (<!-- -->)?renewed@example.com/);
    await renewed(page);

    const data = await browse(node, await aged(), "/examples/private?_data=routes%2Fexamples.private");
    expect(data.status).toBe(200);
    await renewed(data);

    // a route's own error answer (after it asked who is signed in) carries it too
    const ended = await browse(node, await aged(), "/account", form({ sid: "00000000-0000-4000-8000-000000000000" }));
    expect(ended.status).toBe(404);
    await renewed(ended);

    const token = await accessToken(node, jar);
    await waitFor("the token to expire", async () => {
      const r = await node.fetch("/api/examples/whoami", { headers: { Authorization: `Bearer ${token}` } });
      return r.status === 401;
    });
    const api = await browse(node, await aged(), "/api/examples/whoami", {
      headers: { Authorization: `Bearer ${token}` },
    });
    expect(api.status).toBe(200);
    expect(api.headers.get("x-access-token")).toMatch(/^eyJ/);
    await renewed(api);

    // a young cookie is left alone: nothing is sent when nothing is due
    const young = await browse(node, jar, "/examples/welcome");
    expect(young.headers.getSetCookie()).toEqual([]);
  });

  it("sends strangers to sign in and back (pages), or a 401 with WWW-Authenticate (API)", async () => {
    const page = await node.fetch("/examples/private?tab=2");
    expect(page.status).toBe(302);
    expect(page.headers.get("location")).toBe("/login?redirectTo=%2Fexamples%2Fprivate%3Ftab%3D2");
    // the cookie is left alone: a session from another node may not have arrived here yet
    expect(page.headers.getSetCookie()).toEqual([]);
    const api = await node.fetch("/api/examples/whoami");
    expect(api.status).toBe(401);
    expect(api.headers.get("www-authenticate")).toMatch(/^Bearer /);
    expect(await api.json()).toMatchObject({ error: "invalid_request" });
    expect((await node.fetch("/examples/welcome")).status).toBe(200);
  });
});

describe("the door in production", () => {
  it("renews the cookie on a thrown refusal too, and serves no example route", async () => {
    const smtp = await new TestSmtpServer().start();
    try {
      const node = await startNode({
        env: { NODE_ENV: "production", SMTP_URL: smtp.url, ADMIN_EMAILS: "ops@example.com" },
      });
      const jar = await signIn(node, "staff@example.com", smtp);
      const cookies = cookieJarOf(node);
      const aged = new CookieJar().set("pwdless_session", await cookies.aged(jar.get("pwdless_session")!));
      // /cluster throws a 403 Response after asking who is signed in
      const refused = await browse(node, aged, "/cluster");
      expect(refused.status).toBe(403);
      expect(refused.headers.getSetCookie().some((c) => c.startsWith("pwdless_session=Fe26"))).toBe(true);
      for (const path of ["/examples/welcome", "/examples/private", "/api/examples/whoami"]) {
        expect((await browse(node, jar, path)).status, path).toBe(404);
      }
    } finally {
      await smtp.stop();
      await stopAllNodes();
    }
  });

  it("with COOKIE_DOMAIN, sets and clears the session cookie for the whole domain (sibling apps behind forward auth)", async () => {
    const smtp = await new TestSmtpServer().start();
    try {
      const node = await startNode({
        env: {
          NODE_ENV: "production",
          SMTP_URL: smtp.url,
          APP_URL: "https://login.example.test",
          COOKIE_DOMAIN: ".example.test",
          FORWARD_AUTH_HOSTS: "grafana.example.test",
        },
      });
      const jar = new CookieJar();
      const sent = await browse(node, jar, "/login", form({ email: "sibling@example.com" }));
      expect(sent.status).toBe(302);
      const link = linkIn(await waitFor("the mail", () => smtp.to("sibling@example.com")[0]));
      const signedIn = await browse(node, jar, pathOf(link), { method: "POST" });
      const session = signedIn.headers.getSetCookie().find((c) => c.startsWith("pwdless_session=Fe26"));
      expect(session).toMatch(/; Domain=example\.test(;|$)/);
      expect(session).toMatch(/; Secure(;|$)/);
      // the link's own cookie stays on the sign-in host
      expect(signedIn.headers.getSetCookie().some((c) => /^pwdless_link=.*Domain=/i.test(c))).toBe(false);
      expect((await browse(node, jar.clone(), "/auth/forward")).headers.get("x-auth-request-email")).toBe(
        "sibling@example.com",
      );
      const out = await browse(node, jar, "/logout", { method: "POST" });
      const cleared = out.headers.getSetCookie().find((c) => c.startsWith("pwdless_session=;"));
      expect(cleared).toMatch(/Max-Age=0/);
      expect(cleared).toMatch(/; Domain=example\.test(;|$)/);
    } finally {
      await smtp.stop();
      await stopAllNodes();
    }
  });
});
