import type { AccessTokens } from "./access-token.server";
import type { SessionCookie, SessionCookieJar } from "./session-cookie.server";
import type { SessionRow, SessionStore } from "./sessions.server";
import type { SessionHeaders } from "#app/lib/context.server.ts";
import type { User, UserStore } from "#app/lib/accounts/users.server.ts";

/** Who is signed in. What the response needs (a re-sealed cookie, a fresh token) went to the request's SessionHeaders. */
export interface SignedIn {
  user: User;
  session: SessionRow;
}

export type ApiAuth =
  | { ok: true; user: User; session: SessionRow }
  | { ok: false; status: 401; error: "invalid_token" | "invalid_request"; message: string };

const DAY = 24 * 60 * 60 * 1000;

/** What the checks read of a request: its headers (a Fetch Request, or server/'s view of Express's). */
export interface WithHeaders {
  headers: { get(name: string): string | null };
}

export interface AuthOptions {
  /** an older cookie generation still passes this long after a refresh: parallel tabs, requests in flight */
  reuseGraceMs?: number;
  /** told when a replayed old generation ended a session (the audit event `refresh-reuse`) */
  onReuse?: (session: SessionRow, cookieGen: number) => void;
}

/** The cookie and the access token: who is asking, on pages and on the API. */
export class Auth {
  constructor(
    private readonly users: UserStore,
    private readonly sessions: SessionStore,
    private readonly cookies: SessionCookieJar,
    readonly tokens: AccessTokens,
    private readonly now: () => number,
    private readonly options: AuthOptions = {},
  ) {}

  async signIn(user: User, request: Request, method: string): Promise<{ session: SessionRow; setCookie: string }> {
    const session = this.sessions.createSession(user.id, {
      method,
      userAgent: request.headers.get("User-Agent") ?? "",
    });
    const setCookie = await this.cookies.write({ uid: user.id, sid: session.sid, iat: this.now(), gen: session.gen });
    return { session, setCookie };
  }

  /**
   * The live session behind the request's cookie, or null (missing, tampered, revoked, expired).
   * Read-only for the cookie: nothing to send back. A cookie of an older generation shown after
   * the grace window is a copy someone kept: the session ends on every node, for the thief and the
   * owner alike. Use is noted at most hourly (`touch`): a check writes once an hour per session at most.
   */
  async check(request: WithHeaders): Promise<SignedIn | null> {
    const found = await this.resolve(request);
    return found && { user: found.user, session: this.sessions.touch(found.row) };
  }

  /**
   * The signed-in person behind the request's cookie, or null. Whatever the cookie needs is written
   * to `out`, which the server attaches to the response: the sliding renewal of a cookie older than
   * a day, and with `refresh` (POST /auth/refresh only) the session's next generation.
   */
  async fromCookie(
    request: WithHeaders,
    out: SessionHeaders,
    { refresh = false }: { refresh?: boolean } = {},
  ): Promise<SignedIn | null> {
    const found = await this.resolve(request);
    if (!found) return null;
    const { user, row, cookie, stale } = found;
    if (refresh) {
      // within the grace window an older cookie is brought up to date, not moved further on
      const session = stale ? this.sessions.touch(row) : this.sessions.advanceGeneration(row, cookie.gen);
      const gen = Math.max(session.gen, cookie.gen);
      out.cookie(await this.cookies.write({ uid: cookie.uid, sid: cookie.sid, iat: this.now(), gen }));
      return { user, session };
    }
    const session = this.sessions.touch(row);
    // sliding expiry: re-seal a cookie older than a day, at the generation it has
    if (this.now() - cookie.iat > DAY) {
      out.cookie(await this.cookies.write({ uid: cookie.uid, sid: cookie.sid, iat: this.now(), gen: cookie.gen }));
    }
    return { user, session };
  }

  /** The cookie, its live session row and user; ends the session when the cookie is a kept old generation. */
  private async resolve(
    request: WithHeaders,
  ): Promise<{ user: User; row: SessionRow; cookie: SessionCookie; stale: boolean } | null> {
    const cookie = await this.cookies.read(request);
    if (!cookie) return null;
    const row = this.sessions.findActive(cookie.sid);
    if (!row || row.uid !== cookie.uid) return null;
    const stale = cookie.gen < row.gen;
    if (stale && this.now() - row.genAt > (this.options.reuseGraceMs ?? 30_000)) {
      this.sessions.revoke(row.sid, "refresh-reuse");
      this.options.onReuse?.(row, cookie.gen);
      return null;
    }
    const user = this.users.getUser(row.uid);
    return user ? { user, row, cookie, stale } : null;
  }

  /**
   * Bearer first; only an expired (but genuine) Bearer falls back to the cookie of the same
   * session, which then mints a new token: it goes to `out` as X-Access-Token.
   */
  async fromBearer(request: WithHeaders, out: SessionHeaders): Promise<ApiAuth> {
    const header = request.headers.get("Authorization") ?? "";
    const match = /^Bearer ([A-Za-z0-9_.-]+)$/.exec(header.trim());
    if (!match) {
      return {
        ok: false,
        status: 401,
        error: "invalid_request",
        message: "Send an access token: Authorization: Bearer <token>.",
      };
    }
    const check = await this.tokens.verify(match[1]!);
    if (check.ok) {
      const session = this.sessions.findActive(check.claims.sid);
      const user = session ? this.users.getUser(session.uid) : undefined;
      // `sub` is the user's id when the token was issued: the session's own, or the id it merged into
      const same = !!session && !!user && (session.uid === check.claims.uid || user.id === check.claims.uid);
      if (!session || !user || !same)
        return { ok: false, status: 401, error: "invalid_token", message: "The session of this token has ended." };
      return { ok: true, user, session };
    }
    if (check.reason === "expired") {
      // the cookie vouches for this request as on a page load: it does not move the generation
      // (only POST /auth/refresh does), so API calls never race each other or a tab into the grace window
      const signedIn = await this.fromCookie(request, out);
      if (signedIn && signedIn.session.sid === check.claims.sid) {
        out.header("X-Access-Token", await this.tokens.issue(signedIn.user.id, signedIn.session.sid));
        return { ok: true, user: signedIn.user, session: signedIn.session };
      }
      return {
        ok: false,
        status: 401,
        error: "invalid_token",
        message: "The access token has expired; sign in again.",
      };
    }
    return { ok: false, status: 401, error: "invalid_token", message: "The access token is not valid." };
  }

  signOut(session: SessionRow, scope: "this" | "everywhere"): number {
    if (scope === "this") {
      this.sessions.revoke(session.sid, "signed-out");
      return 1;
    }
    const user = this.users.getUser(session.uid);
    const rows = user ? this.sessions.listActive(this.users.idsOf(user)) : [session];
    for (const row of rows) this.sessions.revoke(row.sid, "signed-out-everywhere");
    return rows.length;
  }

  /**
   * Sign out the request's session and clear its cookie (through `out`). A genuine cookie whose
   * session row has not reached this node yet (signed in on another node a moment ago) is still
   * revoked by its id: the revocation replicates, and the session is refused everywhere once its
   * row arrives too.
   */
  async signOutRequest(
    request: WithHeaders,
    out: SessionHeaders,
    scope: "this" | "everywhere",
  ): Promise<{ uid: string; ended: number } | null> {
    out.cookie(this.cookies.clear());
    const signedIn = await this.check(request);
    if (signedIn) return { uid: signedIn.user.id, ended: this.signOut(signedIn.session, scope) };
    const cookie = await this.cookies.read(request);
    if (!cookie || this.sessions.isRevoked(cookie.sid)) return null;
    const reason = scope === "everywhere" ? "signed-out-everywhere" : "signed-out";
    this.sessions.revoke(cookie.sid, reason);
    let ended = 1;
    const user = scope === "everywhere" ? this.users.getUser(cookie.uid) : undefined;
    if (user) {
      for (const row of this.sessions.listActive(this.users.idsOf(user))) {
        this.sessions.revoke(row.sid, reason);
        ended += 1;
      }
    }
    return { uid: cookie.uid, ended };
  }

  clearCookie(): string {
    return this.cookies.clear();
  }
}
