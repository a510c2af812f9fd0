/**
 * An account's life after sign-up: a new address (confirmed by a link or code sent to it), deletion
 * (confirmed by a fresh code or a passkey), the export of every row about a person, and erasure: the one place
 * that knows every table holding someone's rows. A feature that keeps rows about a user adds its
 * own eraser and exporter (`addEraser`, `addExporter`), e.g. the OpenID provider's consents.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { sealData, unsealData } from "iron-session";
import { z } from "zod";
import type { Table } from "#cluster";
import type { Audit } from "#app/lib/abuse/audit.server.ts";
import type { ClusterPort, KeyRing, Logger } from "#app/lib/context.server.ts";
import type { MessageId, Said } from "#app/lib/i18n/intl.ts";
import type { Locale } from "#app/lib/i18n/locales.ts";
import type { Emails } from "#app/lib/mail/messages.server.ts";
import type { Mailer, MailMessage } from "#app/lib/ops/mail.server.ts";
import type { SessionStore } from "#app/lib/session/sessions.server.ts";
import type { Reconfirmed } from "#app/lib/sign-in/passkey/passkey.server.ts";
import { newCode } from "#app/lib/sign-in/code/codes.server.ts";
import type { PasskeyStore } from "./passkeys.server";
import type { SignupPolicy } from "./signup.server";
import { domainMatches } from "./signup.server";
import type { AccountStatus } from "./status.server";
import type { User, UserStore } from "./users.server";

/** A pending confirmation: an address change (with the new address) or a deletion, one per user and purpose. */
const pendingSchema = z.object({
  id: z.string().max(64),
  mac: z.string().max(128),
  until: z.number().int(),
  tries: z.number().int().nonnegative(),
  to: z.string().max(254).optional(),
});
type Pending = z.infer<typeof pendingSchema>;
type Purpose = "email-change" | "delete";

const tokenSchema = z.object({ p: z.literal("email-change"), u: z.string(), i: z.string(), x: z.number().int() });

const MAX_TRIES = 5;
/** what a refused confirmation says, per purpose (each names its own way on) */
const SAID = {
  "email-change": {
    nothingPending: "lifecycle.error.address.nothingPending",
    expired: "lifecycle.error.address.expired",
    tooManyTries: "lifecycle.error.address.tooManyTries",
  },
  delete: {
    nothingPending: "lifecycle.error.delete.nothingPending",
    expired: "lifecycle.error.delete.expired",
    tooManyTries: "lifecycle.error.delete.tooManyTries",
  },
} as const satisfies Record<Purpose, Record<string, MessageId>>;
/** a passkey re-confirmation counts this long (it is checked and used in the same request) */
const RECONFIRMED_FOR_MS = 60_000;
export const CONFIRM_EMAIL_PATH = "/account/email/confirm";

export type LifecycleProblem =
  | "same-address"
  | "domain-not-allowed"
  | "nothing-pending"
  | "expired"
  | "wrong-code"
  | "too-many-tries"
  | "taken"
  | "not-yours"
  | "mail-failed";

/**
 * An expected refusal of a lifecycle step: `said` is what the page says (a message id and its
 * values, in the page's language), `problem` what the audit line and API clients see.
 */
export class LifecycleError extends Error {
  readonly kind = "lifecycle-error";
  constructor(
    readonly problem: LifecycleProblem,
    readonly said: Said,
    readonly status = 400,
  ) {
    super(`${problem}: ${said.id}`);
  }
}

export function isLifecycleError(error: unknown): error is LifecycleError {
  return typeof error === "object" && error !== null && (error as { kind?: unknown }).kind === "lifecycle-error";
}

export interface LifecycleDeps {
  cluster: ClusterPort;
  users: UserStore;
  sessions: SessionStore;
  passkeys: PasskeyStore;
  status: AccountStatus;
  signup: SignupPolicy;
  mailer: Mailer;
  /** the account emails, from the templates, in the language of the request that caused them */
  emails: Emails;
  audit: Audit;
  log: Logger;
  keys: KeyRing;
}

export interface LifecycleOptions {
  appUrl: URL;
  /** how long a confirmation (link or code) works: LINK_TTL_MINUTES */
  ttlMs: number;
  now: () => number;
}

/** Deletes a feature's rows about a user (all its ids) during erasure; runs before the user row goes. */
export type Eraser = (user: User, ids: ReadonlySet<string>) => void;
/** A feature's rows about a user for "download my data". */
export type Exporter = (user: User, ids: ReadonlySet<string>) => unknown;

export class AccountLifecycle {
  private readonly pending: Table<Pending>;
  private readonly erasers = new Map<string, Eraser>();
  private readonly exporters = new Map<string, Exporter>();
  private readonly macKey: string;
  private readonly sealWith: Record<number, string>;
  private readonly openWith: Record<number, string>;

  constructor(
    private readonly deps: LifecycleDeps,
    private readonly options: LifecycleOptions,
  ) {
    this.pending = deps.cluster.store.table("accountConfirmations", { schema: pendingSchema });
    const sub = (k: KeyRing["current"], purpose: string) => createHmac("sha256", k.link).update(purpose).digest("hex");
    this.macKey = sub(deps.keys.current, "account-confirmation-code");
    this.openWith = {};
    for (const k of [...deps.keys.previous].reverse()) this.openWith[k.sealId] = sub(k, "account-confirmation-link");
    this.openWith[deps.keys.current.sealId] = sub(deps.keys.current, "account-confirmation-link");
    this.sealWith = { [deps.keys.current.sealId]: sub(deps.keys.current, "account-confirmation-link") };
  }

  /** A feature that keeps rows about users adds how to erase them (see the list in README, Erasure). */
  addEraser(name: string, eraser: Eraser): void {
    this.erasers.set(name, eraser);
  }

  addExporter(name: string, exporter: Exporter): void {
    this.exporters.set(name, exporter);
  }

  // --- a new address ---

  /** Mail a link and a code to the new address (in `locale`); nothing changes until one of them comes back. */
  async requestAddressChange(user: User, email: string, locale: Locale): Promise<void> {
    if (email === user.email) throw new LifecycleError("same-address", { id: "lifecycle.error.sameAddress" });
    const { allowedDomains, blockedDomains } = this.deps.signup.settings;
    const domain = email.slice(email.lastIndexOf("@") + 1);
    if (
      domainMatches(domain, blockedDomains) ||
      (allowedDomains.length > 0 && !domainMatches(domain, allowedDomains))
    ) {
      throw new LifecycleError("domain-not-allowed", { id: "lifecycle.error.domainNotAllowed" });
    }
    const { id, code, until } = this.open("email-change", user.id, email);
    const token = await sealData(
      { p: "email-change", u: user.id, i: id, x: until } satisfies z.infer<typeof tokenSchema>,
      {
        password: this.sealWith,
        ttl: 0,
      },
    );
    const link = new URL(CONFIRM_EMAIL_PATH, this.options.appUrl);
    link.searchParams.set("token", token);
    await this.send(
      this.deps.emails.changeAddress(email, user.email, link.href, code, locale),
      "the confirmation could not be sent",
    );
  }

  /** The change waiting for this user, if any (the account page offers the code field). */
  pendingAddress(user: User): string | undefined {
    const row = this.pending.get(`email-change:${user.id}`);
    return row && row.until > this.options.now() ? row.to : undefined;
  }

  /**
   * Finish an address change with the link's token or the typed code, for the signed-in user; the
   * notice to the old address is written in `locale` (the confirming request's).
   */
  async confirmAddressChange(user: User, proof: { token: string } | { code: string }, locale: Locale): Promise<User> {
    if ("token" in proof) {
      const token = await this.openToken(proof.token);
      if (token.u !== user.id) throw new LifecycleError("not-yours", { id: "lifecycle.error.notYours" }, 403);
      this.check("email-change", user.id, { id: token.i });
    } else {
      this.check("email-change", user.id, { code: proof.code });
    }
    const row = this.pending.get(`email-change:${user.id}`)!;
    this.pending.delete(`email-change:${user.id}`);
    const old = user.email;
    const changed = this.deps.users.changeEmail(user, row.to!);
    if (!changed.ok) throw new LifecycleError("taken", { id: "lifecycle.error.taken" }, 409);
    this.deps.audit.record("email-changed", {
      uid: user.id,
      email: old,
      newEmailHash: this.deps.audit.hashEmail(row.to!),
    });
    void this.notify(this.deps.emails.addressChanged(old, row.to!, locale));
    return changed.user;
  }

  // --- deletion ---

  /** Mail a fresh code to the account's address; deleting needs it (or a passkey: `deleteWithProof`). */
  async requestDeletion(user: User, locale: Locale): Promise<void> {
    const { code } = this.open("delete", user.id);
    await this.send(this.deps.emails.deleteCode(user.email, code, locale), "the code could not be sent");
  }

  deletionPending(user: User): boolean {
    const row = this.pending.get(`delete:${user.id}`);
    return !!row && row.until > this.options.now();
  }

  /**
   * Delete the account, re-confirmed just now: with the code mailed for it, or with one of the
   * person's passkeys (`Passkeys.reconfirm`: their credential, user verification, a fresh challenge).
   */
  deleteWithProof(user: User, proof: { code: string } | { passkey: Reconfirmed }, locale: Locale): void {
    if ("code" in proof) this.check("delete", user.id, { code: proof.code });
    else if (proof.passkey.uid !== user.id || this.options.now() - proof.passkey.at > RECONFIRMED_FOR_MS) {
      throw new LifecycleError("not-yours", { id: "lifecycle.error.delete.passkeyAgain" }, 403);
    }
    this.erase(user.id, "self");
    void this.notify(this.deps.emails.accountDeleted(user.email, locale));
  }

  // --- erasure and export ---

  /**
   * Erase a user: every row about them, on every node (deletes replicate as tombstones, which are
   * collected after TOMBSTONE_HORIZON_SECONDS). Sessions are revoked first, so every node refuses
   * them at once, then deleted. Returns the erased user, or undefined when there is none.
   */
  erase(uid: string, by: string): User | undefined {
    const user = this.deps.users.getUser(uid);
    if (!user) return undefined;
    const ids = this.deps.users.idsOf(user);
    const { sessions, passkeys, status, signup } = this.deps;
    sessions.revokeAllOf(ids, "account-erased");
    for (const row of sessions.allOf(ids)) sessions.erase(row.sid);
    for (const { id } of passkeys.listOf(ids)) passkeys.remove(id);
    for (const id of ids) {
      status.enable(id);
      for (const purpose of ["email-change", "delete"] as const) {
        if (this.pending.has(`${purpose}:${id}`)) this.pending.delete(`${purpose}:${id}`);
      }
    }
    signup.forget(user.email);
    for (const [name, eraser] of this.erasers) {
      try {
        eraser(user, ids);
      } catch (error) {
        this.deps.log.error("an eraser failed; the rest of the erasure goes on", {
          eraser: name,
          error: (error as Error).message,
        });
      }
    }
    for (const id of ids) {
      const row = this.deps.users.getUser(id);
      this.deps.users.releaseEmail(row?.email ?? user.email, id);
      this.deps.users.deleteUser(id);
    }
    this.deps.audit.record("account-erased", { uid: user.id, by });
    return user;
  }

  /** Every row about this person, as JSON ("download my data"). */
  exportData(user: User): Record<string, unknown> {
    const ids = this.deps.users.idsOf(user);
    const data: Record<string, unknown> = {
      exportedAt: new Date(this.options.now()).toISOString(),
      user: {
        id: user.id,
        email: user.email,
        createdAt: new Date(user.createdAt).toISOString(),
        createdOn: user.createdOn,
      },
      otherIds: [...ids].filter((id) => id !== user.id),
      identities: user.identities.map((i) => ({ ...i, linkedAt: new Date(i.linkedAt).toISOString() })),
      disabled: this.deps.status.get(user.id) ?? null,
      passkeys: this.deps.passkeys.listOf(ids).map(({ id, passkey }) => ({ id, ...passkey })),
      sessions: this.deps.sessions
        .allOf(ids)
        .map((s) => ({ ...s, revoked: this.deps.sessions.revocationOf(s.sid) ?? null })),
      pendingAddressChange: this.pendingAddress(user) ?? null,
    };
    for (const [name, exporter] of this.exporters) data[name] = exporter(user, ids);
    return data;
  }

  /** Tell the person a passkey was added or removed, in `locale` (best effort: the change stands either way). */
  noticePasskey(user: User, change: "added" | "removed", name: string, locale: Locale): void {
    void this.notify(this.deps.emails.passkeyChanged(user.email, change, name, locale));
  }

  prune(): void {
    const now = this.options.now();
    for (const [key, row] of [...this.pending.scan()]) if (row.until <= now) this.pending.delete(key);
  }

  // --- inside ---

  private get minutes(): number {
    return Math.round(this.options.ttlMs / 60_000);
  }

  private open(purpose: Purpose, uid: string, to?: string): { id: string; code: string; until: number } {
    const id = randomBytes(12).toString("base64url");
    const code = newCode();
    const until = this.options.now() + this.options.ttlMs;
    this.pending.set(`${purpose}:${uid}`, {
      id,
      mac: this.mac(purpose, uid, id, code),
      until,
      tries: 0,
      ...(to ? { to } : {}),
    });
    return { id, code, until };
  }

  /** Check a confirmation (the link's id, or a typed code: 5 wrong ones burn it). */
  private check(purpose: Purpose, uid: string, proof: { id: string } | { code: string }): void {
    const key = `${purpose}:${uid}`;
    const row = this.pending.get(key);
    const said = SAID[purpose];
    if (!row) throw new LifecycleError("nothing-pending", { id: said.nothingPending });
    if (row.until <= this.options.now())
      throw new LifecycleError("expired", { id: said.expired, values: { minutes: this.minutes } });
    if ("id" in proof) {
      if (proof.id !== row.id) throw new LifecycleError("expired", { id: "lifecycle.error.address.replaced" });
      return;
    }
    const typed = proof.code.replace(/[\s-]/g, "");
    const expected = Buffer.from(row.mac, "hex");
    const given = Buffer.from(this.mac(purpose, uid, row.id, typed), "hex");
    if (expected.length === given.length && timingSafeEqual(expected, given)) return;
    if (row.tries + 1 >= MAX_TRIES) {
      this.pending.delete(key);
      throw new LifecycleError("too-many-tries", { id: said.tooManyTries }, 429);
    }
    this.pending.set(key, { ...row, tries: row.tries + 1 });
    throw new LifecycleError("wrong-code", {
      id: "lifecycle.error.wrongCode",
      values: { left: MAX_TRIES - row.tries - 1 },
    });
  }

  private mac(purpose: Purpose, uid: string, id: string, code: string): string {
    return createHmac("sha256", this.macKey).update(`${purpose}:${uid}:${id}:${code}`).digest("hex");
  }

  private async openToken(token: string): Promise<z.infer<typeof tokenSchema>> {
    try {
      if (token.length > 2048) throw new Error("too long");
      const parsed = tokenSchema.safeParse(await unsealData<unknown>(token, { password: this.openWith, ttl: 0 }));
      if (!parsed.success) throw new Error("bad token");
      if (parsed.data.x <= this.options.now())
        throw new LifecycleError("expired", {
          id: "lifecycle.error.address.expired",
          values: { minutes: this.minutes },
        });
      return parsed.data;
    } catch (error) {
      if (isLifecycleError(error)) throw error;
      throw new LifecycleError("nothing-pending", { id: "lifecycle.error.address.invalid" });
    }
  }

  private async send(message: MailMessage, what: string): Promise<void> {
    try {
      await this.deps.mailer.send(message);
    } catch (error) {
      this.deps.log.error(`account mail: ${what}`, { error: error instanceof Error ? error.message : String(error) });
      throw new LifecycleError("mail-failed", { id: "login.error.cannotSend" }, 503);
    }
  }

  /** A notice is best effort: logged when it fails, never failing what it reports. */
  private async notify(message: MailMessage): Promise<void> {
    try {
      await this.deps.mailer.send(message);
    } catch (error) {
      this.deps.log.warn("account mail: a notice could not be sent", {
        subject: message.subject,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }
}
