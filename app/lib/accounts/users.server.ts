import { randomUUID } from "node:crypto";
import { z } from "zod";
import { indexTable, type Table, type TableIndex } from "#cluster";
import type { ClusterPort } from "#app/lib/context.server.ts";

export const identitySchema = z.object({
  provider: z.string().min(1).max(64),
  subject: z.string().min(1).max(256),
  linkedAt: z.number().int(),
});

export const userSchema = z.object({
  id: z.string().uuid(),
  email: z.string().min(3).max(254),
  createdAt: z.number().int(),
  createdOn: z.string().max(128),
  identities: z.array(identitySchema).max(32).default([]),
});
export type User = z.infer<typeof userSchema>;
export type Identity = z.infer<typeof identitySchema>;

/** The claim "this email belongs to this user id": the first claim wins on every node. */
const emailClaimSchema = z.object({ uid: z.string().uuid() });

export class UserStore {
  private readonly users: Table<User>;
  private readonly emails: Table<z.infer<typeof emailClaimSchema>>;
  /** email → every user id created for it (more than one only after a concurrent sign-up) */
  private readonly idsByEmail: TableIndex;

  constructor(
    cluster: ClusterPort,
    private readonly now: () => number,
  ) {
    this.users = cluster.store.table("users", { schema: userSchema });
    this.emails = cluster.store.table("emails", { schema: emailClaimSchema, merge: "first-writer-wins" });
    this.idsByEmail = indexTable(this.users, (_id, user) => user.email);
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
      user = {
        id: randomUUID(),
        email,
        createdAt: this.now(),
        createdOn: this.nodeId,
        identities: [],
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

  /** Every id that resolves to this user (its own and any that lost a concurrent sign-up). */
  idsOf(user: User): Set<string> {
    return new Set([user.id, ...this.idsByEmail.keys(user.email)]);
  }

  get size(): number {
    return this.emails.size;
  }
}
