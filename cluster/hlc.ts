/**
 * Hybrid logical clock (Kulkarni et al.): physical milliseconds plus a counter, so stamps
 * order causally related writes even when wall clocks drift a little between nodes.
 * The wall clock comes in as a parameter so tests can drive it.
 */
export interface Stamp {
  /** physical part, ms since epoch */
  t: number;
  /** logical counter within the same t */
  c: number;
  /** writer's node id: the final tie-breaker, so every node picks the same winner */
  n: string;
}

export type WallClock = () => number;

export function compareStamps(a: Stamp, b: Stamp): number {
  if (a.t !== b.t) return a.t < b.t ? -1 : 1;
  if (a.c !== b.c) return a.c < b.c ? -1 : 1;
  if (a.n === b.n) return 0;
  return a.n < b.n ? -1 : 1;
}

export class HybridLogicalClock {
  private t = 0;
  private c = 0;

  constructor(
    readonly nodeId: string,
    private readonly wall: WallClock = Date.now,
  ) {}

  /** A stamp for a local write. */
  now(): Stamp {
    const pt = this.wall();
    if (pt > this.t) {
      this.t = pt;
      this.c = 0;
    } else {
      this.c += 1;
    }
    return { t: this.t, c: this.c, n: this.nodeId };
  }

  /** Fold a received stamp in, so later local stamps order after it. */
  observe(remote: Stamp): void {
    const pt = this.wall();
    const maxT = Math.max(pt, this.t, remote.t);
    if (maxT === this.t && maxT === remote.t) this.c = Math.max(this.c, remote.c) + 1;
    else if (maxT === this.t) this.c += 1;
    else if (maxT === remote.t) this.c = remote.c + 1;
    else this.c = 0;
    this.t = maxT;
  }

  /** Physical time as this clock sees it. */
  wallNow(): number {
    return this.wall();
  }
}
