/** A node's background work on intervals (both transports): a failing task is logged, never thrown. */
import type { ClusterCounters, Logger } from "./types";
import type { ClusterStore } from "./store";

export class BackgroundTasks {
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly log: Logger) {}

  every(ms: number, task: () => void): void {
    this.timers.add(setInterval(() => this.run(task), ms));
  }

  once(ms: number, task: () => void): void {
    this.timers.add(setTimeout(() => this.run(task), ms));
  }

  stop(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  private run(task: () => void): void {
    try {
      task();
    } catch (error) {
      this.log.error("cluster: background task failed", { error: (error as Error).message });
    }
  }
}

/** Drop the tombstones past their safe period, count them, and say so when there were any. */
export function collectTombstones(store: ClusterStore, counters: ClusterCounters, log: Logger): void {
  const dropped = store.collectTombstones();
  counters.tombstonesCollected += dropped;
  if (dropped > 0) log.info("cluster: tombstones collected", { dropped });
}
