import { z } from "zod";
import { indexTable, type Table, type TableIndex } from "#cluster";
import type { ClusterPort } from "#app/lib/context.server.ts";

export type Verdict = { ok: true } | { ok: false; retryAfterSeconds: number };

/** Counts per key within a sliding window, in this node's memory (per-IP limits). */
export class SlidingWindowLimiter {
  private readonly hits = new Map<string, number[]>();
  private static readonly MAX_KEYS = 100_000;

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly now: () => number,
  ) {}

  /** Count one more attempt for `key`, or refuse it when the window is full. */
  hit(key: string): Verdict {
    const now = this.now();
    const recent = (this.hits.get(key) ?? []).filter((t) => t > now - this.windowMs);
    if (recent.length >= this.limit) {
      this.hits.set(key, recent);
      return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((recent[0]! + this.windowMs - now) / 1000)) };
    }
    recent.push(now);
    this.hits.set(key, recent);
    if (this.hits.size > SlidingWindowLimiter.MAX_KEYS) this.prune();
    return { ok: true };
  }

  prune(): void {
    const horizon = this.now() - this.windowMs;
    for (const [key, times] of this.hits) if (times.every((t) => t <= horizon)) this.hits.delete(key);
  }
}

const sendsSchema = z.object({ times: z.array(z.number().int()).max(1000) });
type Sends = z.infer<typeof sendsSchema>;

/**
 * Link emails per address, counted cluster-wide: each node writes only its own row per address
 * (`<address hash>|<node>`), so concurrent sends on two nodes never overwrite each other.
 */
export class EmailSendLimiter {
  private readonly table: Table<Sends>;
  /** address hash → its rows' keys, so a check reads only those */
  private readonly byAddress: TableIndex;

  constructor(
    private readonly cluster: ClusterPort,
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly now: () => number,
  ) {
    this.table = cluster.store.table("linkSends", { schema: sendsSchema });
    this.byAddress = indexTable(this.table, (key) => key.slice(0, key.indexOf("|")));
  }

  check(addressHash: string): Verdict {
    const times = this.recent(addressHash);
    if (times.length < this.limit) return { ok: true };
    const oldest = Math.min(...times);
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((oldest + this.windowMs - this.now()) / 1000)) };
  }

  record(addressHash: string): void {
    const key = `${addressHash}|${this.cluster.nodeId}`;
    const horizon = this.now() - this.windowMs;
    const mine = (this.table.get(key)?.times ?? []).filter((t) => t > horizon);
    this.table.set(key, { times: [...mine, this.now()].slice(-this.limit - 1) });
  }

  /** Delete this node's rows that no longer count. */
  prune(): void {
    const horizon = this.now() - this.windowMs;
    for (const [key, row] of [...this.table.scan()]) {
      if (key.endsWith(`|${this.cluster.nodeId}`) && row.times.every((t) => t <= horizon)) this.table.delete(key);
    }
  }

  private recent(addressHash: string): number[] {
    const horizon = this.now() - this.windowMs;
    const times: number[] = [];
    for (const key of this.byAddress.keys(addressHash)) {
      times.push(...(this.table.get(key)?.times ?? []).filter((t) => t > horizon));
    }
    return times;
  }
}
