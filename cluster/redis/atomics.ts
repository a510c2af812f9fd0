/**
 * Redis mode's atomic decisions: the same answer whichever node asks. A single-use claim is kept
 * as a replicated row (CLAIMS_TABLE), so every node holds it and a Redis restarted empty gets it
 * back from them; nothing is decided while a bucket waits to be re-seeded.
 */
import { randomBytes } from "node:crypto";
import { ClusterUnavailableError } from "../errors";
import type { ClusterStore, RecordEnvelope } from "../store";
import type { ClusterAtomics, Reservation } from "../transport";
import { withDeadline, type RedisConnection } from "./connection";
import { bucketOf, CLAIM_ONCE, CLAIMS_TABLE, RESERVE_SLOT, UNSEEDED, type RedisNames } from "./scripts";
import { z } from "zod";

export interface AtomicsDeps {
  conn: RedisConnection;
  names: RedisNames;
  store: ClusterStore;
  timeoutMs: number;
  /** false while Redis is unreachable or being re-seeded: refuse at once */
  usable(): boolean;
  /** Redis refused because a bucket has no generation: it lost its data */
  onUnseeded(): void;
  /** a claim row this node stored got sequence number `seq` in bucket `bucket` */
  onStored(bucket: number, seq: number): void;
}

const claimSchema = z.object({ until: z.number() });

/** The moment a claim row stops counting, or undefined for anything else. */
export function claimUntil(record: RecordEnvelope): number | undefined {
  if (record.table !== CLAIMS_TABLE || record.value === null) return undefined;
  const parsed = claimSchema.safeParse(record.value);
  return parsed.success ? parsed.data.until : undefined;
}

export class RedisAtomics implements ClusterAtomics {
  readonly scope = "cluster" as const;

  constructor(private readonly deps: AtomicsDeps) {}

  async claimOnce(name: string, key: string, ttlMs: number): Promise<boolean> {
    const { store, names } = this.deps;
    const rowKey = `${name}:${key}`;
    const bucket = bucketOf(CLAIMS_TABLE, rowKey);
    const until = store.clock.wallNow() + Math.max(1, Math.round(ttlMs));
    const record: RecordEnvelope = { table: CLAIMS_TABLE, key: rowKey, value: { until }, stamp: store.clock.now() };
    const { t, c, n } = record.stamp;
    const reply = await this.guard(() =>
      this.deps.conn.run(
        CLAIM_ONCE,
        [names.row(CLAIMS_TABLE, rowKey), names.meta(bucket)],
        ["w", String(t), String(c), n, JSON.stringify(record), names.channel(bucket), String(until)],
      ),
    );
    if (typeof reply !== "number" || reply <= 0) return false;
    // the claim is one of this node's rows now: it survives a Redis that restarts empty
    store.applyRemote(record, "sync");
    this.deps.onStored(bucket, reply);
    return true;
  }

  async reserve(name: string, key: string, limit: number, windowMs: number): Promise<Reservation> {
    const id = randomBytes(9).toString("base64url");
    const { names } = this.deps;
    const reply = await this.guard(() =>
      this.deps.conn.run(
        RESERVE_SLOT,
        [names.window(name, key), names.meta(bucketOf(name, key))],
        ["w", String(this.deps.store.clock.wallNow()), String(windowMs), String(limit), id],
      ),
    );
    if (!Array.isArray(reply) || reply.length !== 2) throw new ClusterUnavailableError("redis", "unexpected reply");
    return Number(reply[0]) === 1 ? { ok: true, id } : { ok: false, retryAfterMs: Number(reply[1]) };
  }

  async release(name: string, key: string, id: string): Promise<void> {
    const slotKey = this.deps.names.window(name, key);
    await this.guard(() => this.deps.conn.send(slotKey, ["ZREM", slotKey, id]));
  }

  /**
   * Expired claims leave every node's memory by the same tombstone (stamped at their end), so
   * no node writes anything for them: Redis has already dropped the key by its expiry.
   */
  sweepExpired(now: number): number {
    let dropped = 0;
    const { store } = this.deps;
    for (const record of [...store.records(CLAIMS_TABLE)]) {
      const until = claimUntil(record);
      if (until === undefined || until > now) continue;
      const tombstone = {
        table: CLAIMS_TABLE,
        key: record.key,
        value: null,
        stamp: { t: until, c: 0, n: record.stamp.n },
      };
      if (store.applyRemote(tombstone, "sync") === "applied") dropped += 1;
    }
    return dropped;
  }

  private async guard<T>(command: () => Promise<T>): Promise<T> {
    if (!this.deps.usable()) throw new ClusterUnavailableError("redis", "Redis is unreachable or being re-seeded");
    try {
      return await withDeadline(command(), this.deps.timeoutMs, "an atomic decision");
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (message.startsWith(UNSEEDED)) this.deps.onUnseeded();
      throw new ClusterUnavailableError("redis", message);
    }
  }
}
