import { describe, expect, it } from "vitest";
import { ClusterStore } from "../../cluster/index";
import { AccessTokens } from "#app/lib/session/access-token.server.ts";
import { Auth } from "#app/lib/session/auth.server.ts";
import { SessionCookieJar } from "#app/lib/session/session-cookie.server.ts";
import { SessionStore, type SessionRow } from "#app/lib/session/sessions.server.ts";
import { UserStore } from "#app/lib/accounts/users.server.ts";
import { deriveKeyRing } from "../../server/keys";
import { fakeClusterPort } from "#tests/support/fake-cluster.ts";

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

describe("refresh generations", () => {
  it("moves the session and the cookie to the next generation on each refresh", async () => {
    const { auth, sessions, first, sid } = await signedIn();
    const one = await auth.fromCookie(withCookie(first), { refresh: true });
    expect(one!.session.gen).toBe(1);
    const two = await auth.fromCookie(withCookie(one!.setCookie!), { refresh: true });
    expect(two!.session.gen).toBe(2);
    expect(sessions.findActive(sid)!.gen).toBe(2);
    // a plain page load neither advances nor refuses the current cookie
    expect((await auth.fromCookie(withCookie(two!.setCookie!)))!.session.gen).toBe(2);
  });

  it("accepts an older generation within the grace window (another tab), without advancing again", async () => {
    const { auth, clock, first, reused } = await signedIn();
    const refreshed = await auth.fromCookie(withCookie(first), { refresh: true });
    clock.now += 29_000;
    const otherTab = await auth.fromCookie(withCookie(first), { refresh: true });
    expect(otherTab).not.toBeNull();
    expect(otherTab!.session.gen).toBe(1);
    expect((await auth.fromCookie(withCookie(refreshed!.setCookie!)))!.session.gen).toBe(1);
    expect(reused).toHaveLength(0);
  });

  it("ends the session for the thief and the owner when an older generation comes after the grace window", async () => {
    const { auth, clock, sessions, first, sid, reused } = await signedIn();
    const owner = await auth.fromCookie(withCookie(first), { refresh: true });
    clock.now += 31_000;
    expect(await auth.fromCookie(withCookie(first), { refresh: true })).toBeNull();
    expect(sessions.isRevoked(sid)).toBe(true);
    expect(reused).toEqual([{ session: expect.objectContaining({ sid, gen: 1 }), cookieGen: 0 }]);
    // the owner's newer cookie is refused too: the session is over
    expect(await auth.fromCookie(withCookie(owner!.setCookie!))).toBeNull();
  });

  it("treats a replay on a plain page load the same way", async () => {
    const { auth, clock, sessions, first, sid } = await signedIn(0);
    await auth.fromCookie(withCookie(first), { refresh: true });
    clock.now += 1;
    expect(await auth.fromCookie(withCookie(first))).toBeNull();
    expect(sessions.isRevoked(sid)).toBe(true);
  });

  it("accepts a cookie ahead of this node's row (a refresh on another node not seen yet) and moves past it", async () => {
    const { auth, sessions, first, sid } = await signedIn();
    const one = await auth.fromCookie(withCookie(first), { refresh: true });
    const two = await auth.fromCookie(withCookie(one!.setCookie!), { refresh: true });
    // this node's row falls back to generation 1, as if generation 2 were still on its way
    sessions.advanceGeneration({ ...sessions.findActive(sid)!, gen: 0 }, 0);
    const three = await auth.fromCookie(withCookie(two!.setCookie!), { refresh: true });
    expect(three!.session.gen).toBe(3);
  });

  it("counts a transparent refresh on the API (expired token + cookie) as a refresh", async () => {
    const { auth, clock, first, sid, sessions } = await signedIn();
    const token = await auth.tokens.issue(sessions.findActive(sid)!.uid, sid);
    clock.now += 901_000;
    const request = new Request("http://localhost/api/me", {
      headers: { Authorization: `Bearer ${token}`, Cookie: first.split(";")[0]! },
    });
    const result = await auth.fromBearer(request);
    expect(result).toMatchObject({ ok: true, refreshedToken: expect.any(String), setCookie: expect.any(String) });
    expect(sessions.findActive(sid)!.gen).toBe(1);
    clock.now += 31_000;
    expect(await auth.fromCookie(withCookie(first))).toBeNull();
  });
});
