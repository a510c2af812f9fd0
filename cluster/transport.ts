/**
 * What a transport must do, in one place: the libp2p gossip node (node.ts) and the Redis node
 * (redis/node.ts) both follow this contract, and `startCluster` picks one by configuration.
 *
 * A transport owns one ClusterStore and:
 *  1. carries every local write (`store.onLocalWrite`) to the other nodes, with its stamp;
 *  2. applies theirs with `store.applyRemote(record)`, and what it loads at start or after an
 *     outage with `applyRemote(record, "sync")`, in slices that yield to the event loop;
 *  3. makes `durable()` resolve only once this node's writes so far are stored where it promises
 *     (this node's file; Redis), rejecting with ClusterUnavailableError, never hanging;
 *  4. says whether the node is ready (`isReady()`, for /readyz) and how it is doing (`status()`);
 *  5. offers the atomic primitives below, and says how far their atomicity reaches.
 */
export type TransportKind = "gossip" | "redis";

export type Reservation = { ok: true; id: string } | { ok: false; retryAfterMs: number };

/**
 * Decisions that must be taken once. `scope: "cluster"` (Redis): every node sees the same answer,
 * whichever node asks. `scope: "node"` (gossip): the answer is atomic on this node only, so a
 * caller that needs one answer cluster-wide asks one chosen node (e.g. a link's issuer).
 */
export interface ClusterAtomics {
  readonly scope: "cluster" | "node";
  /** true for the first caller of (name, key) within ttlMs; false for every later one */
  claimOnce(name: string, key: string, ttlMs: number): Promise<boolean>;
  /** take one of `limit` slots of (name, key) in the sliding window; check and count in one step */
  reserve(name: string, key: string, limit: number, windowMs: number): Promise<Reservation>;
  /** give a reserved slot back (the act it counted did not happen) */
  release(name: string, key: string, id: string): Promise<void>;
}

/** The gossip mode's atomics: decided in this process's memory, with no await between check and act. */
export class LocalAtomics implements ClusterAtomics {
  readonly scope = "node" as const;
  private readonly claims = new Map<string, number>();
  private readonly windows = new Map<string, Array<{ at: number; id: string }>>();
  private sequence = 0;
  private static readonly MAX_ENTRIES = 100_000;

  constructor(private readonly now: () => number) {}

  async claimOnce(name: string, key: string, ttlMs: number): Promise<boolean> {
    const id = `${name}\u0000${key}`;
    const now = this.now();
    const until = this.claims.get(id);
    if (until !== undefined && until > now) return false;
    this.claims.set(id, now + ttlMs);
    if (this.claims.size > LocalAtomics.MAX_ENTRIES) {
      for (const [k, expires] of this.claims) if (expires <= now) this.claims.delete(k);
    }
    return true;
  }

  async reserve(name: string, key: string, limit: number, windowMs: number): Promise<Reservation> {
    const id = `${name}\u0000${key}`;
    const now = this.now();
    const recent = (this.windows.get(id) ?? []).filter((hit) => hit.at > now - windowMs);
    if (recent.length >= limit) {
      this.windows.set(id, recent);
      return { ok: false, retryAfterMs: Math.max(1, recent[0]!.at + windowMs - now) };
    }
    const slot = { at: now, id: `${now}-${(this.sequence += 1)}` };
    recent.push(slot);
    this.windows.set(id, recent);
    if (this.windows.size > LocalAtomics.MAX_ENTRIES) {
      for (const [k, hits] of this.windows) if (hits.every((hit) => hit.at <= now - windowMs)) this.windows.delete(k);
    }
    return { ok: true, id: slot.id };
  }

  async release(name: string, key: string, id: string): Promise<void> {
    const hits = this.windows.get(`${name}\u0000${key}`);
    if (hits)
      this.windows.set(
        `${name}\u0000${key}`,
        hits.filter((hit) => hit.id !== id),
      );
  }
}
