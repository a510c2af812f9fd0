import { randomUUID } from "node:crypto";
import { z } from "zod";
import { indexTable, type Table, type TableIndex } from "#cluster";
import type { ClusterPort } from "#app/lib/context.server.ts";
import { uuid } from "#app/lib/accounts/users.server.ts";
import { tableSchema } from "#app/lib/table-schema.server.ts";

export const sessionSchema = z
  .object({
    sid: uuid(),
    uid: uuid(),
    createdAt: z.number().int(),
    lastUsedAt: z.number().int(),
    expiresAt: z.number().int(),
    createdOn: z.string().max(128),
    method: z.string().max(64),
    userAgent: z.string().max(512),
    /** the refresh generation the newest cookie carries, and when it last advanced (theft detection) */
    gen: z.number().int().nonnegative().default(0),
    genAt: z.number().int().default(0),
  })
  // a literal of fixed shape: V8 holds its fields inline, where zod's built-up object spills them
  .transform((s) => ({
    sid: s.sid,
    uid: s.uid,
    createdAt: s.createdAt,
    lastUsedAt: s.lastUsedAt,
    expiresAt: s.expiresAt,
    createdOn: s.createdOn,
    method: s.method,
    userAgent: s.userAgent,
    gen: s.gen,
    genAt: s.genAt,
  }));
export type SessionRow = z.infer<typeof sessionSchema>;

/** Revocations live apart from the session rows, so a later "last used" touch can never undo one. */
const revocationSchema = z.object({ revokedAt: z.number().int(), reason: z.string().max(64) });

const HOUR = 60 * 60 * 1000;
const DAY = 24 * HOUR;

export class SessionStore {
  private readonly sessions: Table<SessionRow>;
  private readonly revocations: Table<z.infer<typeof revocationSchema>>;
  private readonly sidsByUser: TableIndex;

  constructor(
    private readonly cluster: ClusterPort,
    private readonly ttlDays: number,
    private readonly now: () => number,
    /** absolute limit: a session ends this long after sign-in, however often it is used */
    private readonly maxDays = 90,
  ) {
    this.sessions = cluster.store.table("sessions", {
      schema: tableSchema(sessionSchema),
      strings: { createdOn: "shared", method: "shared", userAgent: "shared" },
    });
    this.revocations = cluster.store.table("revocations", { schema: revocationSchema });
    this.sidsByUser = indexTable(this.sessions, "uid");
  }

  createSession(uid: string, details: { method: string; userAgent: string }): SessionRow {
    const now = this.now();
    const row: SessionRow = {
      sid: randomUUID(),
      uid,
      createdAt: now,
      lastUsedAt: now,
      expiresAt: now + Math.min(this.ttlDays, this.maxDays) * DAY,
      createdOn: this.cluster.nodeId,
      method: details.method,
      userAgent: details.userAgent.slice(0, 512),
      gen: 0,
      genAt: now,
    };
    this.sessions.set(row.sid, row);
    return row;
  }

  /** users whose sessions are refused whatever their rows say (disabled accounts), from accounts/ */
  private blocked: (uid: string) => boolean = () => false;

  /**
   * Refuse every session of the users this says (a disabled account): checked on every read of a
   * session, so a row that arrives before its revocation does not sign anyone in either.
   */
  refuseUsers(blocked: (uid: string) => boolean): void {
    this.blocked = blocked;
  }

  /** The session if it exists, is not revoked, has not expired and its user is not disabled. */
  findActive(sid: string): SessionRow | undefined {
    const row = this.sessions.get(sid);
    const now = this.now();
    if (!row || this.revocations.has(sid) || row.expiresAt <= now || row.createdAt + this.maxDays * DAY <= now)
      return undefined;
    if (this.blocked(row.uid)) return undefined;
    return row;
  }

  /** Every session row of these user ids, ended ones too (an erasure deletes them all). */
  allOf(uids: Set<string>): SessionRow[] {
    const rows: SessionRow[] = [];
    for (const uid of uids) {
      for (const sid of this.sidsByUser.keys(uid)) {
        const row = this.sessions.get(sid);
        if (row) rows.push(row);
      }
    }
    return rows;
  }

  /** End every active session of these user ids on every node; returns how many. */
  revokeAllOf(uids: Set<string>, reason: string): number {
    let ended = 0;
    for (const row of this.allOf(uids)) {
      if (this.revocations.has(row.sid)) continue;
      this.revoke(row.sid, reason);
      ended += 1;
    }
    return ended;
  }

  /** Delete a session row and its revocation (erasure). */
  erase(sid: string): void {
    this.sessions.delete(sid);
    this.revocations.delete(sid);
  }

  /** The session rows and their revocations, for those who report their changes (webhooks). */
  get rows(): { sessions: Table<SessionRow>; revocations: Table<z.infer<typeof revocationSchema>> } {
    return { sessions: this.sessions, revocations: this.revocations };
  }

  /** A session's revocation, if any (the data export shows why a session ended). */
  revocationOf(sid: string): { revokedAt: number; reason: string } | undefined {
    return this.revocations.get(sid);
  }

  isRevoked(sid: string): boolean {
    return this.revocations.has(sid);
  }

  /** Slide the expiry and note the use; written at most hourly so reads stay cheap cluster-wide. */
  touch(row: SessionRow): SessionRow {
    const now = this.now();
    if (now - row.lastUsedAt < HOUR) return row;
    const updated = {
      ...row,
      lastUsedAt: now,
      expiresAt: Math.min(now + this.ttlDays * DAY, row.createdAt + this.maxDays * DAY),
    };
    this.sessions.set(row.sid, updated);
    return updated;
  }

  /**
   * A refresh: the session moves to the generation after both its own and the cookie's (the cookie
   * may be ahead when this node has not yet seen another node's refresh), and notes the use.
   */
  advanceGeneration(row: SessionRow, cookieGen: number): SessionRow {
    const now = this.now();
    const updated = {
      ...row,
      gen: Math.max(row.gen, cookieGen) + 1,
      genAt: now,
      lastUsedAt: now,
      expiresAt: Math.min(now + this.ttlDays * DAY, row.createdAt + this.maxDays * DAY),
    };
    this.sessions.set(row.sid, updated);
    return updated;
  }

  /**
   * Told of each session this node revokes (sign-out, sign-out everywhere, ended from /account,
   * theft detection), not of revocations arriving from peers: the node that ended it acts on it once.
   */
  onRevoked(listener: (sid: string, reason: string) => void): () => void {
    return this.revocations.onChange(({ key, value, previous, origin }) => {
      if (origin === "local" && value && !previous) listener(key, value.reason);
    });
  }

  revoke(sid: string, reason: string): void {
    if (!this.revocations.has(sid)) this.revocations.set(sid, { revokedAt: this.now(), reason });
  }

  /**
   * Delete sessions that can no longer be used (expired, or revoked) and revocations older than
   * any session's absolute limit, so the tables and their files stay the size of what is live.
   * The node that created a session deletes it; any node does once it is a day past its expiry
   * (its creator may be gone), so N nodes do not all write the same tombstone.
   */
  prune(): number {
    const now = this.now();
    let dropped = 0;
    for (const [sid, row] of [...this.sessions.scan()]) {
      const end = Math.min(row.expiresAt, row.createdAt + this.maxDays * DAY);
      const dead = end <= now || this.revocations.has(sid);
      if (dead && (row.createdOn === this.cluster.nodeId || end + DAY <= now)) {
        this.sessions.delete(sid);
        dropped += 1;
      }
    }
    // a revocation outlives its session's absolute limit (revokedAt ≥ createdAt), then stops nothing
    for (const [sid, revocation] of [...this.revocations.scan()]) {
      if (revocation.revokedAt + this.maxDays * DAY + DAY <= now) {
        this.revocations.delete(sid);
        dropped += 1;
      }
    }
    return dropped;
  }

  /** Active sessions of any of these user ids, newest first. */
  listActive(uids: Set<string>): SessionRow[] {
    const rows: SessionRow[] = [];
    for (const uid of uids) {
      for (const sid of this.sidsByUser.keys(uid)) {
        const row = this.findActive(sid);
        if (row) rows.push(row);
      }
    }
    return rows.sort((a, b) => b.createdAt - a.createdAt);
  }
}
