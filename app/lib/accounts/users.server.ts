import { randomUUID } from "node:crypto";
import { z } from "zod";
import type { Table } from "#cluster";
import type { ClusterPort } from "#app/lib/context.server.ts";

export const identitySchema = z.object({
  provider: z.string().min(1).max(64),
  subject: z.string().min(1).max(256),
  linkedAt: z.number().int(),
});

/** a UUID, checked with a plain pattern: zod's own costs ~1 µs, and a catch-up checks millions */
export const uuid = () =>
  z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, "not a UUID");

export const userSchema = z
  .object({
    id: uuid(),
    email: z.string().min(3).max(254),
    createdAt: z.number().int(),
    createdOn: z.string().max(128),
    identities: z.array(identitySchema).max(32).default([]),
  })
  // a literal of fixed shape: V8 holds its fields inline, where zod's built-up object spills them
  .transform((u) => ({
    id: u.id,
    email: u.email,
    createdAt: u.createdAt,
    createdOn: u.createdOn,
    identities: u.identities,
  }));
export type User = z.infer<typeof userSchema>;
export type Identity = z.infer<typeof identitySchema>;

/** The claim "this email belongs to this user id": the first claim wins on every node. */
const emailClaimSchema = z.object({
  uid: uuid(),
  /** set on a claim made after the address was released: which release it follows (cluster/store.ts) */
  after: z.number().int().nonnegative().optional(),
});
export type EmailClaim = z.infer<typeof emailClaimSchema>;

/**
 * The user ids that have an email without owning its claim (the losers of a concurrent sign-up,
 * and for a moment ids whose claim has not arrived), kept from both tables' changes. Only these
 * exceptions are indexed: an entry per user would cost ~40 bytes a user for a rare race.
 */
class UnclaimedIds {
  private readonly byEmail = new Map<string, Set<string>>();

  constructor(users: Table<User>, emails: Table<EmailClaim>) {
    const classify = (id: string, email: string) => {
      if (emails.get(email)?.uid === id) this.remove(email, id);
      else this.add(email, id);
    };
    for (const [id, user] of users.scan()) classify(id, user.email);
    users.onChange(({ key, value, previous }) => {
      if (previous && previous.email !== value?.email) this.remove(previous.email, key);
      if (value) classify(key, value.email);
    });
    emails.onChange(({ key: email, value, previous }) => {
      if (value) this.remove(email, value.uid);
      // a claim that changed hands (a remote earlier claim won): the former owner is now a loser
      if (previous && previous.uid !== value?.uid && users.get(previous.uid)?.email === email) {
        this.add(email, previous.uid);
      }
    });
  }

  of(email: string): Iterable<string> {
    return this.byEmail.get(email) ?? [];
  }

  private add(email: string, id: string): void {
    const ids = this.byEmail.get(email);
    if (ids) ids.add(id);
    else this.byEmail.set(email, new Set([id]));
  }

  private remove(email: string, id: string): void {
    const ids = this.byEmail.get(email);
    if (!ids) return;
    ids.delete(id);
    if (ids.size === 0) this.byEmail.delete(email);
  }
}

export class UserStore {
  private readonly users: Table<User>;
  private readonly emails: Table<EmailClaim>;
  /** email → the other user ids created for it (only after a concurrent sign-up) */
  private readonly unclaimed: UnclaimedIds;

  constructor(
    cluster: ClusterPort,
    private readonly now: () => number,
  ) {
    // strings held once across rows and tables: what keeps a user at a few hundred bytes
    this.users = cluster.store.table("users", {
      schema: userSchema,
      strings: { email: { keyOf: "emails" }, createdOn: "shared" },
    });
    this.emails = cluster.store.table("emails", {
      schema: emailClaimSchema,
      merge: "first-writer-wins",
      strings: { uid: { keyOf: "users" } },
    });
    this.unclaimed = new UnclaimedIds(this.users, this.emails);
    this.nodeId = cluster.nodeId;
  }

  private readonly nodeId: string;

  /**
   * A user by id. When two nodes created an account for the same email at once, the
   * losing id resolves to the winner, so sessions made on either side keep working.
   */
  getUser(uid: string): User | undefined {
    const user = this.users.get(uid);
    if (!user) return undefined;
    const owner = this.emails.get(user.email)?.uid;
    if (owner && owner !== uid) return this.users.get(owner) ?? user;
    return user;
  }

  findByEmail(email: string): User | undefined {
    const claim = this.emails.get(email);
    return claim ? this.getUser(claim.uid) : undefined;
  }

  /** The user of a verified email, created on first sign-in. */
  findOrCreateByEmail(email: string, identity?: Omit<Identity, "linkedAt">): User {
    let user = this.findByEmail(email);
    if (!user) {
      // with its first identity in the same row: one write, one user.created (no user.updated after it)
      user = {
        id: randomUUID(),
        email,
        createdAt: this.now(),
        createdOn: this.nodeId,
        identities: identity ? [{ ...identity, linkedAt: this.now() }] : [],
      };
      this.users.set(user.id, user);
      this.emails.set(email, { uid: user.id });
    }
    if (identity) user = this.linkIdentity(user, identity);
    return user;
  }

  linkIdentity(user: User, identity: Omit<Identity, "linkedAt">): User {
    const known = user.identities.some((i) => i.provider === identity.provider && i.subject === identity.subject);
    if (known) return user;
    const updated = { ...user, identities: [...user.identities, { ...identity, linkedAt: this.now() }] };
    this.users.set(updated.id, updated);
    return updated;
  }

  /**
   * Move a user to a new address: claim it first (first writer wins: "taken" when another account
   * holds it), then the user row, and only then release the old address, so it is never free
   * while the change is under way. The UUID, sessions and passkeys stay.
   */
  changeEmail(user: User, email: string): { ok: true; user: User } | { ok: false; reason: "taken" } {
    if (email === user.email) return { ok: true, user };
    const claim = this.emails.get(email);
    if (claim && claim.uid !== user.id) return { ok: false, reason: "taken" };
    if (!claim && !this.emails.set(email, { uid: user.id })) return { ok: false, reason: "taken" };
    const old = user.email;
    const identities = user.identities.map((i) =>
      i.provider === "email" && i.subject === old ? { ...i, subject: email, linkedAt: this.now() } : i,
    );
    const updated = { ...user, email, identities };
    this.users.set(user.id, updated);
    this.releaseEmail(old, user.id);
    return { ok: true, user: updated };
  }

  /** Give an address up, if this user holds its claim (an erased account, a changed address). */
  releaseEmail(email: string, uid: string): void {
    if (this.emails.get(email)?.uid === uid) this.emails.delete(email);
  }

  /** Delete a user row (erasure: its claims, sessions and credentials are the caller's to delete). */
  deleteUser(uid: string): void {
    this.users.delete(uid);
  }

  /** The user rows, for those who report their changes (webhooks). */
  get rows(): Table<User> {
    return this.users;
  }

  /** The address claims (address → user id), for the admin index of addresses. */
  get claims(): Table<EmailClaim> {
    return this.emails;
  }

  /** Every id that resolves to this user (its own and any that lost a concurrent sign-up). */
  idsOf(user: User): Set<string> {
    return new Set([user.id, ...this.unclaimed.of(user.email)]);
  }

  get size(): number {
    return this.emails.size;
  }
}
