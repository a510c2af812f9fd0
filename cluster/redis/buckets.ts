/**
 * What a Redis-mode node knows of each bucket's state in Redis, and the re-seed. A bucket's
 * generation is set once it holds the cluster's rows (absent: Redis lost them, or is new); its
 * sequence number grows with every row written and travels with each published row. From these
 * the node tells, at each heartbeat, a Redis that lost its data (no generation, or another one),
 * a Redis that went back in time (a sequence below one this node saw), and pub/sub messages it
 * missed (a gap in the sequence).
 */
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import type { ClusterStore, RecordEnvelope } from "../store";
import { BUCKETS, bucketOf } from "./scripts";
import { expireAt } from "./writer";

export interface BucketMeta {
  gen: string | undefined;
  seq: number;
}

export interface Assessment {
  /** no generation: Redis lost the bucket (or never had it) */
  missing: number[];
  /** another generation than the one this node adopted: someone re-seeded it */
  changed: number[];
  /** a sequence below one this node saw or stored: Redis went back in time */
  behind: number[];
  /** a published row this node should have received by now did not arrive */
  missed: boolean;
}

export class BucketStates {
  private readonly gens: Array<string | undefined> = new Array<string | undefined>(BUCKETS).fill(undefined);
  /** the highest sequence number received by pub/sub */
  private readonly seen: number[] = new Array<number>(BUCKETS).fill(0);
  /** the highest sequence number of this node's own writes */
  private readonly stored: number[] = new Array<number>(BUCKETS).fill(0);
  /** Redis's sequence numbers at the previous heartbeat */
  private expected: number[] | undefined;
  private tracking = false;
  /** when this node first saw a bucket without a generation (reset once all have one) */
  missingSince: number | undefined;

  /** Every bucket has a generation this node adopted. */
  get settled(): boolean {
    return this.gens.every((gen) => gen !== undefined);
  }

  generation(bucket: number): string | undefined {
    return this.gens[bucket];
  }

  /** A published row arrived: true when one before it was missed. */
  received(bucket: number, seq: number): boolean {
    const gap = this.tracking && this.gens[bucket] !== undefined && seq > this.seen[bucket]! + 1;
    if (seq > this.seen[bucket]!) this.seen[bucket] = seq;
    return gap;
  }

  /** One of this node's writes was stored with `seq`. */
  storedAs(bucket: number, seq: number): void {
    if (seq > this.stored[bucket]!) this.stored[bucket] = seq;
  }

  /** What this node knows Redis held, taken before it asks Redis (so later messages do not count). */
  snapshot(): number[] {
    return this.seen.map((seen, b) => Math.max(seen, this.stored[b]!));
  }

  /** A load starts from Redis's state read just before it: messages after it follow in order. */
  loading(metas: BucketMeta[]): void {
    metas.forEach((meta, b) => {
      if (meta.gen !== undefined && meta.gen === this.gens[b] && meta.seq > this.seen[b]!) this.seen[b] = meta.seq;
    });
    this.expected = undefined;
    this.tracking = true;
  }

  /** Take a bucket's generation as Redis holds it now; its sequence counts start again. */
  adopt(bucket: number, gen: string): void {
    if (this.gens[bucket] !== gen) {
      this.seen[bucket] = 0;
      this.stored[bucket] = 0;
    }
    this.gens[bucket] = gen;
  }

  /** After a re-seed: Redis's sequence is the reference again (it may be below what this node saw). */
  rebase(bucket: number, seq: number): void {
    this.seen[bucket] = seq;
    this.stored[bucket] = seq;
  }

  assess(metas: BucketMeta[], known: number[], now: number): Assessment {
    const out: Assessment = { missing: [], changed: [], behind: [], missed: false };
    metas.forEach((meta, b) => {
      const mine = this.gens[b];
      if (meta.gen === undefined) out.missing.push(b);
      else if (mine === undefined) this.adopt(b, meta.gen);
      else if (meta.gen !== mine) out.changed.push(b);
      else if (meta.seq < known[b]!) out.behind.push(b);
      else if (this.tracking && this.expected && this.seen[b]! < this.expected[b]!) out.missed = true;
    });
    this.expected = metas.map((meta) => meta.seq);
    if (out.missing.length === 0) this.missingSince = undefined;
    else this.missingSince ??= now;
    return out;
  }
}

export interface PutBackDeps {
  store: ClusterStore;
  tombstoneTtlMs: number;
  /** one re-seed write (greater stamp kept; allowed before the bucket has a generation) */
  seed(record: RecordEnvelope): Promise<number>;
  stopping(): boolean;
}

/** writes in flight at once while re-seeding; each slice then yields to the event loop */
const SLICE = 256;

/**
 * Write every row this node holds in `buckets` back into Redis through the greater-stamp merge,
 * in slices. Rows that have expired meanwhile (old tombstones, ended claims) are left out.
 * Resolves to the number of rows written.
 */
export async function putBack(deps: PutBackDeps, buckets: ReadonlySet<number>, now: number): Promise<number> {
  let written = 0;
  let slice: Array<Promise<number>> = [];
  for (const record of deps.store.records()) {
    if (!buckets.has(bucketOf(record.table, record.key))) continue;
    const until = expireAt(record, deps.tombstoneTtlMs);
    if (until > 0 && until <= now) continue;
    slice.push(deps.seed(record));
    written += 1;
    if (slice.length >= SLICE) {
      await Promise.all(slice);
      slice = [];
      await yieldToEventLoop();
      if (deps.stopping()) throw new Error("the node is stopping");
    }
  }
  await Promise.all(slice);
  return written;
}
