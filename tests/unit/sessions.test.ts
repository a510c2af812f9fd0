import { describe, expect, it } from "vitest";
import { ClusterStore } from "../../cluster/index";
import { AccessTokens } from "#app/lib/session/access-token.server.ts";
import { Auth } from "#app/lib/session/auth.server.ts";
import { SessionCookieJar } from "#app/lib/session/session-cookie.server.ts";
import { SessionStore } from "#app/lib/session/sessions.server.ts";
import { UserStore } from "#app/lib/accounts/users.server.ts";
import { deriveKeyRing } from "../../server/keys";
import { fakeClusterPort } from "#tests/support/fake-cluster.ts";
import { recorded } from "#tests/support/session-headers.ts";

const HOUR = 3600_000;
const DAY = 24 * HOUR;

function setup(nodeId = "n1", clock = { now: 1_700_000_000_000 }) {
  const now = () => clock.now;
  const store = new ClusterStore({ nodeId, clock: now });
  const writes: string[] = [];
  store.onLocalWrite((r) => writes.push(`${r.table}:${r.key}`));
  const port = fakeClusterPort(store);
  const keys = deriveKeyRing("k".repeat(40), []);
  const users = new UserStore(port, now);
  const sessions = new SessionStore(port, 30, now, 90);
  const cookies = new SessionCookieJar(keys, { secure: false, maxAgeSeconds: 30 * 24 * 3600 });
  const auth = new Auth(
    users,
    sessions,
    cookies,
    new AccessTokens(keys, { issuer: "urn:test", audience: "http://localhost" }, 900, now),
    now,
  );
  return { clock, users, sessions, auth, writes, store };
}

const withCookie = (setCookie: string) =>
  new Request("http://localhost/", { headers: { Cookie: setCookie.split(";")[0]!, "User-Agent": "test" } });

describe("session lifetime", () => {
  it("slides with use for 30 days at a time, writing 'last used' at most hourly", async () => {
    const { clock, users, auth, writes } = setup();
    const user = users.findOrCreateByEmail("s@example.com");
    const { setCookie } = await auth.signIn(user, withCookie("x=y"), "email");
    writes.length = 0;
    clock.now += 10 * 60_000;
    expect(await auth.fromCookie(withCookie(setCookie), recorded())).not.toBeNull();
    expect(writes).toEqual([]); // used within the hour: nothing replicated
    clock.now += HOUR;
    expect(await auth.fromCookie(withCookie(setCookie), recorded())).not.toBeNull();
    expect(writes.filter((w) => w.startsWith("sessions:"))).toHaveLength(1);
    // idle for more than 30 days: over
    clock.now += 31 * DAY;
    expect(await auth.fromCookie(withCookie(setCookie), recorded())).toBeNull();
  });

  it("is checked by forward auth without a write per check: 'last used' at most hourly, never a generation", async () => {
    const { clock, users, auth, writes, sessions } = setup();
    const user = users.findOrCreateByEmail("f@example.com");
    const { setCookie, session } = await auth.signIn(user, withCookie("x=y"), "email");
    clock.now += HOUR + 1;
    writes.length = 0;
    for (let i = 0; i < 100; i++) {
      expect(await auth.check(withCookie(setCookie))).not.toBeNull();
      clock.now += 10_000; // 100 checks over 16 minutes
    }
    expect(writes).toEqual([`sessions:${session.sid}`]);
    expect(sessions.findActive(session.sid)!.gen).toBe(0);
  });

  it("re-seals the cookie once it is older than a day", async () => {
    const { clock, users, auth } = setup();
    const user = users.findOrCreateByEmail("r@example.com");
    const { setCookie } = await auth.signIn(user, withCookie("x=y"), "email");
    clock.now += 2 * HOUR;
    const young = recorded();
    expect(await auth.fromCookie(withCookie(setCookie), young)).not.toBeNull();
    expect(young.cookies).toEqual([]);
    clock.now += DAY;
    const old = recorded();
    expect(await auth.fromCookie(withCookie(setCookie), old)).not.toBeNull();
    expect(old.cookies).toHaveLength(1);
    expect(old.lastCookie).toMatch(/^pwdless_session=/);
    expect(old.lastCookie).not.toBe(setCookie);
    // the read-only check (forward auth) never re-seals: it has no way to send a cookie
    expect(await auth.check(withCookie(setCookie))).not.toBeNull();
  });

  it("ends 90 days after sign-in however often it is used", async () => {
    const { clock, users, auth } = setup();
    const user = users.findOrCreateByEmail("a@example.com");
    let { setCookie } = await auth.signIn(user, withCookie("x=y"), "email");
    for (let day = 0; day < 89; day += 5) {
      clock.now += 5 * DAY;
      const out = recorded();
      const signedIn = await auth.fromCookie(withCookie(setCookie), out);
      if (day + 5 < 90) expect(signedIn, `day ${day + 5}`).not.toBeNull();
      if (out.lastCookie) setCookie = out.lastCookie;
    }
    clock.now += 2 * DAY; // day 92
    expect(await auth.fromCookie(withCookie(setCookie), recorded())).toBeNull();
  });

  it("refuses the token and the cookie of a revoked session", async () => {
    const { users, auth, sessions } = setup();
    const user = users.findOrCreateByEmail("t@example.com");
    const { setCookie, session } = await auth.signIn(user, withCookie("x=y"), "email");
    const token = await auth.tokens.issue(user.id, session.sid);
    const bearer = new Request("http://localhost/api/me", { headers: { Authorization: `Bearer ${token}` } });
    expect((await auth.fromBearer(bearer, recorded())).ok).toBe(true);
    sessions.revoke(session.sid, "test");
    expect(await auth.fromBearer(bearer, recorded())).toMatchObject({ ok: false, error: "invalid_token" });
    expect(await auth.fromCookie(withCookie(setCookie), recorded())).toBeNull();
  });
});

describe("signing out on a node the session has not reached yet", () => {
  it("revokes the genuine cookie's session by id, so it is refused there once its row arrives", async () => {
    const clock = { now: 1_700_000_000_000 };
    const a = setup("a", clock);
    const b = setup("b", clock);
    const fromA: Parameters<ClusterStore["applyRemote"]>[0][] = [];
    a.store.onLocalWrite((r) => fromA.push(r));
    const user = a.users.findOrCreateByEmail("late@example.com");
    const { session, setCookie } = await a.auth.signIn(user, withCookie("x=y"), "email");
    // B has none of A's rows yet: the sign-out there still counts
    const out = recorded();
    expect(await b.auth.signOutRequest(withCookie(setCookie), out, "this")).toEqual({ uid: user.id, ended: 1 });
    expect(out.cookies).toEqual([expect.stringMatching(/^pwdless_session=;.*Max-Age=0/)]);
    expect(b.sessions.isRevoked(session.sid)).toBe(true);
    for (const record of fromA) b.store.applyRemote(record);
    expect(await b.auth.fromCookie(withCookie(setCookie), recorded())).toBeNull();
    // a cookie that is not ours signs nobody out
    expect(await b.auth.signOutRequest(withCookie("pwdless_session=forged"), recorded(), "this")).toBeNull();
  });
});
