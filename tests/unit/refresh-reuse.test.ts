import { describe, expect, it } from "vitest";
import { ClusterStore } from "../../cluster/index";
import { AccessTokens } from "#app/lib/session/access-token.server.ts";
import { Auth } from "#app/lib/session/auth.server.ts";
import { SessionCookieJar } from "#app/lib/session/session-cookie.server.ts";
import { SessionStore, type SessionRow } from "#app/lib/session/sessions.server.ts";
import { UserStore } from "#app/lib/accounts/users.server.ts";
import { deriveKeyRing } from "../../server/keys";
import { fakeClusterPort } from "#tests/support/fake-cluster.ts";
import { recorded } from "#tests/support/session-headers.ts";

function setup(graceMs = 30_000) {
  const clock = { now: 1_700_000_000_000 };
  const now = () => clock.now;
  const store = new ClusterStore({ nodeId: "n1", clock: now });
  const port = fakeClusterPort(store);
  const keys = deriveKeyRing("k".repeat(40), []);
  const users = new UserStore(port, now);
  const sessions = new SessionStore(port, 30, now, 90);
  const cookies = new SessionCookieJar(keys, { secure: false, maxAgeSeconds: 30 * 24 * 3600 });
  const reused: Array<{ session: SessionRow; cookieGen: number }> = [];
  const tokens = new AccessTokens(keys, { issuer: "urn:test", audience: "http://localhost" }, 900, now);
  const auth = new Auth(users, sessions, cookies, tokens, now, {
    reuseGraceMs: graceMs,
    onReuse: (session, cookieGen) => reused.push({ session, cookieGen }),
  });
  return { clock, users, sessions, auth, reused };
}

const withCookie = (setCookie: string) =>
  new Request("http://localhost/", { headers: { Cookie: setCookie.split(";")[0]!, "User-Agent": "test" } });

async function signedIn(graceMs?: number) {
  const parts = setup(graceMs);
  const user = parts.users.findOrCreateByEmail("gen@example.com");
  const { setCookie, session } = await parts.auth.signIn(user, withCookie("x=y"), "email");
  return { ...parts, first: setCookie, sid: session.sid };
}

/** An explicit refresh (POST /auth/refresh): the session and the cookie it sends back. */
async function refresh(auth: Auth, cookie: string) {
  const out = recorded();
  const signedIn = await auth.fromCookie(withCookie(cookie), out, { refresh: true });
  return signedIn && { ...signedIn, cookie: out.lastCookie! };
}

describe("refresh generations", () => {
  it("moves the session and the cookie to the next generation on each refresh", async () => {
    const { auth, sessions, first, sid } = await signedIn();
    const one = await refresh(auth, first);
    expect(one!.session.gen).toBe(1);
    const two = await refresh(auth, one!.cookie);
    expect(two!.session.gen).toBe(2);
    expect(sessions.findActive(sid)!.gen).toBe(2);
    // a plain page load neither advances nor refuses the current cookie
    expect((await auth.fromCookie(withCookie(two!.cookie), recorded()))!.session.gen).toBe(2);
  });

  it("accepts an older generation within the grace window (another tab), without advancing again", async () => {
    const { auth, clock, first, reused } = await signedIn();
    const refreshed = await refresh(auth, first);
    clock.now += 29_000;
    const otherTab = await refresh(auth, first);
    expect(otherTab).not.toBeNull();
    expect(otherTab!.session.gen).toBe(1);
    expect((await auth.fromCookie(withCookie(refreshed!.cookie), recorded()))!.session.gen).toBe(1);
    expect(reused).toHaveLength(0);
  });

  it("ends the session for the thief and the owner when an older generation comes after the grace window", async () => {
    const { auth, clock, sessions, first, sid, reused } = await signedIn();
    const owner = await refresh(auth, first);
    clock.now += 31_000;
    expect(await refresh(auth, first)).toBeNull();
    expect(sessions.isRevoked(sid)).toBe(true);
    expect(reused).toEqual([{ session: expect.objectContaining({ sid, gen: 1 }), cookieGen: 0 }]);
    // the owner's newer cookie is refused too: the session is over
    expect(await auth.fromCookie(withCookie(owner!.cookie), recorded())).toBeNull();
  });

  it("treats a replay on a plain page load the same way", async () => {
    const { auth, clock, sessions, first, sid } = await signedIn(0);
    await refresh(auth, first);
    clock.now += 1;
    expect(await auth.fromCookie(withCookie(first), recorded())).toBeNull();
    expect(sessions.isRevoked(sid)).toBe(true);
  });

  it("accepts a cookie ahead of this node's row (a refresh on another node not seen yet) and moves past it", async () => {
    const { auth, sessions, first, sid } = await signedIn();
    const one = await refresh(auth, first);
    const two = await refresh(auth, one!.cookie);
    // this node's row falls back to generation 1, as if generation 2 were still on its way
    sessions.advanceGeneration({ ...sessions.findActive(sid)!, gen: 0 }, 0);
    const three = await refresh(auth, two!.cookie);
    expect(three!.session.gen).toBe(3);
  });
});

describe("the API's cookie fallback (expired token + cookie) and forward auth", () => {
  async function expiredToken(grace?: number) {
    const parts = await signedIn(grace);
    const token = await parts.auth.tokens.issue(parts.sessions.findActive(parts.sid)!.uid, parts.sid);
    parts.clock.now += 901_000;
    const api = (cookie: string) =>
      new Request("http://localhost/api/me", {
        headers: { Authorization: `Bearer ${token}`, Cookie: cookie.split(";")[0]! },
      });
    return { ...parts, api };
  }

  it("serves the request and mints a token without moving the generation: nothing for a route to drop", async () => {
    const { auth, sessions, first, sid, api, reused } = await expiredToken(0);
    for (let i = 0; i < 5; i++) {
      const out = recorded();
      expect(await auth.fromBearer(api(first), out)).toMatchObject({ ok: true });
      expect(out.headers.get("x-access-token")).toEqual(expect.any(String));
      // a route that ignored every header would lose nothing: the cookie is still the current one
      expect(out.cookies).toEqual([]);
    }
    expect(sessions.findActive(sid)!.gen).toBe(0);
    expect(reused).toHaveLength(0);
  });

  it("still ends the session when a copy older than an explicit refresh comes back there, past the grace window", async () => {
    const { auth, clock, sessions, first, sid, api, reused } = await expiredToken();
    const owner = await refresh(auth, first);
    clock.now += 31_000;
    // the thief's copy, on the API fallback: refused, and the session ends for everyone
    expect(await auth.fromBearer(api(first), recorded())).toMatchObject({ ok: false, error: "invalid_token" });
    expect(sessions.isRevoked(sid)).toBe(true);
    expect(reused).toHaveLength(1);
    expect(await auth.check(withCookie(owner!.cookie))).toBeNull();
  });

  it("forward auth's check refuses a kept old generation past the grace window, and never advances one", async () => {
    const { auth, clock, sessions, first, sid, reused } = await signedIn();
    expect((await auth.check(withCookie(first)))!.session.gen).toBe(0);
    expect(sessions.findActive(sid)!.gen).toBe(0);
    await refresh(auth, first);
    clock.now += 31_000;
    expect(await auth.check(withCookie(first))).toBeNull();
    expect(sessions.isRevoked(sid)).toBe(true);
    expect(reused).toHaveLength(1);
  });
});
