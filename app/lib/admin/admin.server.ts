/**
 * The operator's desk, the one module /api/admin/* and /admin import: who may act (ADMIN_API_TOKEN
 * or an ADMIN_EMAILS session), finding users by address prefix or id, and the acts on a user
 * (disable, enable, end sessions, erase, invite), each audited.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { Audit } from "#app/lib/abuse/audit.server.ts";
import type { AccountLifecycle } from "#app/lib/accounts/lifecycle.server.ts";
import type { PasskeyStore } from "#app/lib/accounts/passkeys.server.ts";
import type { SignupPolicy } from "#app/lib/accounts/signup.server.ts";
import type { AccountStatus } from "#app/lib/accounts/status.server.ts";
import type { User, UserStore } from "#app/lib/accounts/users.server.ts";
import type { Logger } from "#app/lib/context.server.ts";
import type { Locale } from "#app/lib/i18n/locales.ts";
import type { Emails } from "#app/lib/mail/messages.server.ts";
import type { Mailer } from "#app/lib/ops/mail.server.ts";
import type { Auth, WithHeaders } from "#app/lib/session/auth.server.ts";
import type { SessionStore } from "#app/lib/session/sessions.server.ts";
import { json } from "@remix-run/node";
import { apiError, NO_STORE } from "#app/lib/http.server.ts";
import { AddressIndex } from "./address-index.server";

export interface AdminDeps {
  auth: Auth;
  users: UserStore;
  sessions: SessionStore;
  passkeys: PasskeyStore;
  status: AccountStatus;
  signup: SignupPolicy;
  lifecycle: AccountLifecycle;
  audit: Audit;
  mailer: Mailer;
  emails: Emails;
  log: Logger;
}

export interface AdminOptions {
  /** ADMIN_API_TOKEN, if set */
  token: string | undefined;
  /** ADMIN_EMAILS, lower-case */
  emails: readonly string[];
  appUrl: URL;
}

/** Who is acting: the token, or an administrator's user id (audit and rows say which). */
export type Admin =
  | { ok: true; by: string }
  | { ok: false; status: 401 | 403; error: "unauthorized" | "forbidden" | "invalid_token"; message: string };

export interface UserSummary {
  id: string;
  email: string;
  createdAt: string;
  disabled: boolean;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const MAX_PAGE = 200;

const sha256 = (value: string) => createHash("sha256").update(value).digest();

export class AdminDesk {
  private readonly index: AddressIndex;
  private readonly tokenHash: Buffer | undefined;

  constructor(
    private readonly deps: AdminDeps,
    private readonly options: AdminOptions,
  ) {
    this.index = new AddressIndex(deps.users.claims);
    this.tokenHash = options.token ? sha256(options.token) : undefined;
  }

  /** The token (compared as hashes, in constant time) or a session of one of ADMIN_EMAILS. */
  async authorize(request: WithHeaders): Promise<Admin> {
    const header = request.headers.get("Authorization");
    if (header !== null) {
      const bearer = /^Bearer (\S+)$/.exec(header.trim())?.[1];
      if (bearer && this.tokenHash && timingSafeEqual(sha256(bearer), this.tokenHash))
        return { ok: true, by: "admin-token" };
      return {
        ok: false,
        status: 401,
        error: "invalid_token",
        message: "That token is not this server's ADMIN_API_TOKEN.",
      };
    }
    const signedIn = await this.deps.auth.check(request);
    if (!signedIn) {
      return {
        ok: false,
        status: 401,
        error: "unauthorized",
        message: "Send Authorization: Bearer <ADMIN_API_TOKEN>, or sign in as an administrator.",
      };
    }
    if (!this.options.emails.includes(signedIn.user.email)) {
      return { ok: false, status: 403, error: "forbidden", message: "This account is not one of ADMIN_EMAILS." };
    }
    return { ok: true, by: signedIn.user.id };
  }

  /** Is this the session of an administrator (for /admin pages)? */
  isAdminUser(user: User): boolean {
    return this.options.emails.includes(user.email);
  }

  /**
   * Users whose address starts with `query` (lower-cased), in address order, or the user whose id
   * it is; `limit` per page, `cursor` from the previous page. Work is proportional to the page.
   */
  search(
    query: string,
    limit: number,
    cursor: string | undefined,
  ): { users: UserSummary[]; nextCursor: string | null; indexReady: boolean } {
    const q = query.trim().toLowerCase();
    if (UUID.test(q)) {
      const user = this.deps.users.getUser(q);
      return { users: user ? [this.summary(user)] : [], nextCursor: null, indexReady: true };
    }
    const after = cursor === undefined ? undefined : decodeCursor(cursor);
    const users: UserSummary[] = [];
    let more = false;
    for (const email of this.index.sorted.from(after === undefined ? q : `${after}\u0000`)) {
      if (!email.startsWith(q)) break;
      if (users.length === limit) {
        more = true;
        break;
      }
      const user = this.deps.users.findByEmail(email);
      if (user && user.email === email) users.push(this.summary(user));
    }
    const last = users[users.length - 1];
    return { users, nextCursor: more && last ? encodeCursor(last.email) : null, indexReady: this.index.isBuilt };
  }

  /** Everything about one user an operator needs: addresses, identities, passkeys, sessions. */
  detail(id: string) {
    const user = UUID.test(id) ? this.deps.users.getUser(id) : undefined;
    if (!user) return undefined;
    const ids = this.deps.users.idsOf(user);
    const disabled = this.deps.status.get(user.id);
    return {
      ...this.summary(user),
      disabledAt: disabled ? new Date(disabled.at).toISOString() : null,
      createdOn: user.createdOn,
      otherIds: [...ids].filter((i) => i !== user.id),
      addresses: [user.email],
      identities: user.identities.map((i) => ({
        provider: i.provider,
        subject: i.subject,
        linkedAt: new Date(i.linkedAt).toISOString(),
      })),
      passkeys: this.deps.passkeys.listOf(ids).map(({ id: pid, passkey }) => ({
        id: pid,
        name: passkey.name,
        createdAt: new Date(passkey.createdAt).toISOString(),
        lastUsedAt: passkey.lastUsedAt === null ? null : new Date(passkey.lastUsedAt).toISOString(),
      })),
      sessions: this.deps.sessions.listActive(ids).map((s) => ({
        id: s.sid,
        method: s.method,
        createdAt: new Date(s.createdAt).toISOString(),
        lastUsedAt: new Date(s.lastUsedAt).toISOString(),
        createdOn: s.createdOn,
        userAgent: s.userAgent,
      })),
    };
  }

  /** Lock a user out: no sign-in by any method, and every session ends on every node. */
  disable(id: string, by: string, reason = ""): User | undefined {
    const user = this.found(id);
    if (!user) return undefined;
    this.deps.status.disable(user.id, by, reason);
    const ended = this.deps.sessions.revokeAllOf(this.deps.users.idsOf(user), "account-disabled");
    this.act("disable", by, user.id, { ended });
    return user;
  }

  enable(id: string, by: string): User | undefined {
    const user = this.found(id);
    if (!user) return undefined;
    this.deps.status.enable(user.id);
    this.act("enable", by, user.id);
    return user;
  }

  endSessions(id: string, by: string): number | undefined {
    const user = this.found(id);
    if (!user) return undefined;
    const ended = this.deps.sessions.revokeAllOf(this.deps.users.idsOf(user), "ended-by-admin");
    this.act("end-sessions", by, user.id, { ended });
    return ended;
  }

  erase(id: string, by: string): User | undefined {
    const user = this.found(id);
    if (!user) return undefined;
    this.deps.lifecycle.erase(user.id, by);
    this.act("erase", by, user.id);
    return user;
  }

  /**
   * Let an address sign up whatever SIGNUP says (but blocked domains and SIGNUP=closed), and tell
   * it in `locale`: the invitee's language, which the caller names (the admin's own is not theirs).
   */
  async invite(email: string, by: string, locale: Locale): Promise<{ until: string; existing: boolean }> {
    const existing = !!this.deps.users.findByEmail(email);
    const invite = this.deps.signup.invite(email, by);
    this.act("invite", by, undefined, { email });
    if (!existing) {
      const link = new URL("/login", this.options.appUrl);
      link.searchParams.set("email", email);
      this.deps.mailer.send(this.deps.emails.invitation(email, link.href, locale)).catch((error: unknown) => {
        this.deps.log.warn("admin: the invitation mail could not be sent", { error: (error as Error).message });
      });
    }
    return { until: new Date(invite.until).toISOString(), existing };
  }

  /** An operator's read (searches, a user's page) is audited too, without the query's address. */
  noteRead(by: string, what: "search" | "user", uid?: string): void {
    this.act(`read-${what}`, by, uid);
  }

  /** A refused call is audited too: who tries the admin API without the right is worth knowing. */
  refused(status: number): void {
    this.deps.audit.record("admin-refused", { status });
  }

  private found(id: string): User | undefined {
    return UUID.test(id) ? this.deps.users.getUser(id) : undefined;
  }

  private summary(user: User): UserSummary {
    return {
      id: user.id,
      email: user.email,
      createdAt: new Date(user.createdAt).toISOString(),
      disabled: this.deps.status.isDisabled(user.id),
    };
  }

  private act(action: string, by: string, uid: string | undefined, extra: Record<string, unknown> = {}): void {
    this.deps.audit.record("admin-act", { action, by, ...(uid ? { uid } : {}), ...extra });
  }
}

function encodeCursor(email: string): string {
  return Buffer.from(`a:${email}`).toString("base64url");
}

/** The address a page ended at; a cursor we did not make reads as "from the start". */
function decodeCursor(cursor: string): string | undefined {
  if (cursor.length > 400) return undefined;
  const text = Buffer.from(cursor, "base64url").toString("utf8");
  return text.startsWith("a:") ? text.slice(2) : undefined;
}

/**
 * The shape of every /api/admin/* answer: authorise (token or administrator's session), then the
 * act; refusals are `{"error","message"}` with their status, like the rest of the API.
 */
export async function adminApi(
  desk: AdminDesk,
  request: Request,
  act: (by: string) => Promise<Response> | Response,
): Promise<Response> {
  const admin = await desk.authorize(request);
  if (!admin.ok) {
    desk.refused(admin.status);
    return apiError(admin.status, admin.error, admin.message);
  }
  return act(admin.by);
}

export function adminNotFound(): Response {
  return apiError(404, "not_found", "There is no user with that id.");
}

/** The answer to a method an /api/admin/* route does not take. */
export function adminWrongMethod(method: "POST" | "DELETE"): Response {
  return apiError(405, "invalid_request", `Use ${method}.`, { Allow: method });
}

/**
 * An act on one user (/api/admin/users/:id/…): the one method it takes, the desk's authorisation,
 * then `act`'s JSON answer, or 404 when there is no such user (`act` returns undefined).
 */
export async function adminUserAct(
  desk: AdminDesk,
  request: Request,
  method: "POST" | "DELETE",
  act: (by: string) => Record<string, unknown> | undefined,
): Promise<Response> {
  if (request.method !== method) return adminWrongMethod(method);
  return adminApi(desk, request, (by) => {
    const answer = act(by);
    return answer ? json(answer, { headers: NO_STORE }) : adminNotFound();
  });
}
