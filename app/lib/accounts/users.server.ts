import { randomUUID } from "node:crypto";
import { z } from "zod";
import { indexTable, type Table, type TableIndex } from "#cluster";
import type { ClusterPort } from "#app/lib/context.server.ts";
import { tableSchema } from "#app/lib/table-schema.server.ts";

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

export class UserStore {
  private readonly users: Table<User>;
  private readonly emails: Table<EmailClaim>;
  /** email → the user ids created for it (more than one only after a concurrent sign-up) */
  private readonly byEmail: TableIndex;

  constructor(
    cluster: ClusterPort,
    private readonly now: () => number,
  ) {
    // a small vocabulary (node ids, providers) held once for all rows
    this.users = cluster.store.table("users", {
      schema: tableSchema(userSchema),
      strings: { createdOn: "shared", provider: "shared" },
    });
    this.emails = cluster.store.table("emails", { schema: tableSchema(emailClaimSchema), merge: "first-writer-wins" });
    // ~12 bytes a user, built from the rows' bytes at start
    this.byEmail = indexTable(this.users, "email");
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
    const user = this.findByEmail(email);
    if (user) return identity ? this.linkIdentity(user, identity) : user;
    const now = this.now();
    // one write: a new user is created with the identity it signed in with
    const created: User = {
      id: randomUUID(),
      email,
      createdAt: now,
      createdOn: this.nodeId,
      identities: identity ? [{ ...identity, linkedAt: now }] : [],
    };
    this.users.set(created.id, created);
    this.emails.set(email, { uid: created.id });
    return created;
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
    return new Set([user.id, ...this.byEmail.keys(user.email)]);
  }

  get size(): number {
    return this.emails.size;
  }
}
