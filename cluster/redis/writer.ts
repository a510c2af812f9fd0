/**
 * Redis mode's write path: every local write is stored by the greater-stamp script, then, where
 * the primary has replicas, confirmed by `WAIT` (one WAIT covers every write sent before it on
 * the same connection, so they are batched); `durable()` resolves once the writes made before it
 * was called are acknowledged, and rejects (never hangs) when Redis cannot acknowledge them.
 */
import { ClusterUnavailableError } from "../errors";
import { releaseEpoch, type ClusterStore, type RecordEnvelope } from "../store";
import type { ClusterCounters, Logger } from "../types";
import { parseRecord } from "./messages";
import { claimUntil } from "./atomics";
import { withDeadline, type RedisConnection } from "./connection";
import { bucketOf, UNSEEDED, WRITE_ROW, type RedisNames } from "./scripts";

export interface WriterDeps {
  conn: RedisConnection;
  names: RedisNames;
  store: ClusterStore;
  log: Logger;
  counters: ClusterCounters;
  timeoutMs: number;
  tombstoneTtlMs: number;
  /** REDIS_WAIT_REPLICAS: "auto", or a number that must confirm (strict) */
  waitSetting: "auto" | number;
  /** a write or a WAIT failed: Redis is unreachable or slow */
  onFailure(error: unknown): void;
  /** Redis refused a write because the bucket has no generation: it lost its data */
  onUnseeded(): void;
  /** a write this node stored got sequence number `seq` in bucket `bucket` */
  onStored(bucket: number, seq: number): void;
}

interface Pending {
  id: string;
  record: RecordEnvelope;
  /** the order of local writes: `durable()` waits for those before it */
  n: number;
  /** sent and not answered; stored on the primary (maybe awaiting replicas); to be sent again */
  state: "sending" | "stored" | "failed";
}

interface Waiter {
  upTo: number;
  resolve(): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

/** When a row's key leaves Redis by itself: a tombstone after its safe period, a claim at its end. */
export function expireAt(record: RecordEnvelope, tombstoneTtlMs: number): number {
  if (record.value === null) return tombstoneTtlMs > 0 ? record.stamp.t + tombstoneTtlMs : 0;
  return claimUntil(record) ?? 0;
}

export class RedisWriter {
  /** writes Redis has not acknowledged, oldest first (a newer write of a key replaces and moves it) */
  private readonly unacked = new Map<string, Pending>();
  private readonly waiters = new Set<Waiter>();
  private awaitingReplicas: Pending[] = [];
  private waitInFlight = false;
  /** strict mode: replicas fell short; the next WAIT comes with the next write or heartbeat, not at once */
  private held = false;
  private written = 0;
  private shortfallLogged = false;
  private stopped = false;
  /** replicas each write waits for now (0: none), set from the topology */
  replicasWanted = 0;
  shortfalls = 0;

  constructor(private readonly deps: WriterDeps) {}

  get size(): number {
    return this.unacked.size;
  }

  write(record: RecordEnvelope): void {
    const id = `${record.table}\u0000${record.key}`;
    const entry: Pending = { id, record, n: (this.written += 1), state: "sending" };
    this.unacked.delete(id);
    this.unacked.set(id, entry);
    this.held = false;
    this.send(entry);
  }

  /** After an outage or a re-seed (and at every healthy heartbeat): store again what failed. */
  resend(): void {
    for (const entry of this.unacked.values()) if (entry.state === "failed") this.send(entry);
    this.retryWait();
  }

  /** Strict mode: try the held confirmations again (the heartbeat calls this). */
  retryWait(): void {
    this.held = false;
    this.pumpWait();
  }

  /**
   * A re-seed write: allowed before the bucket has a generation, keeps the greater stamp (the
   * smaller for claims), publishes only what changed Redis. Resolves to its sequence number, or 0.
   */
  async seed(record: RecordEnvelope): Promise<number> {
    const reply = await withDeadline(this.run("s", record), this.deps.timeoutMs, "a re-seed write");
    return typeof reply === "number" ? reply : 0;
  }

  durable(): Promise<void> {
    if (this.unacked.size === 0) return Promise.resolve();
    if (this.stopped) {
      return Promise.reject(new ClusterUnavailableError("redis", "the cluster node is stopping"));
    }
    const { timeoutMs } = this.deps;
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        upTo: this.written,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          reject(new ClusterUnavailableError("redis", `Redis did not acknowledge the change within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.waiters.add(waiter);
    });
  }

  failWaiters(error: Error): void {
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
    this.waiters.clear();
  }

  stop(): void {
    this.stopped = true;
    this.failWaiters(new ClusterUnavailableError("redis", "the cluster node is stopping"));
  }

  private run(mode: "w" | "s", record: RecordEnvelope): Promise<unknown> {
    const { names } = this.deps;
    const bucket = bucketOf(record.table, record.key);
    const { t, c, n } = record.stamp;
    return this.deps.conn.run(
      WRITE_ROW,
      [names.row(record.table, record.key), names.meta(bucket)],
      [
        mode,
        String(t),
        String(c),
        n,
        JSON.stringify(record),
        this.deps.store.mergeRule(record.table) === "first-writer-wins" ? "fww" : "lww",
        names.channel(bucket),
        String(expireAt(record, this.deps.tombstoneTtlMs)),
        record.value === null ? "1" : "0",
        String(releaseEpoch(record)),
      ],
    );
  }

  private send(entry: Pending): void {
    if (this.stopped) return;
    entry.state = "sending";
    this.deps.counters.messagesOut += 1;
    // commands issued in one turn of the event loop travel to Redis in one pipeline
    withDeadline(this.run("w", entry.record), this.deps.timeoutMs, "a row write")
      .then((reply) => {
        entry.state = "stored";
        if (typeof reply === "number") {
          this.deps.onStored(bucketOf(entry.record.table, entry.record.key), reply);
        } else if (typeof reply === "string") {
          // Redis holds a version that wins (a claim made first elsewhere): take it
          const winner = parseRecord(reply);
          if (winner) this.deps.store.applyRemote(winner, "sync");
        }
        this.stored(entry);
      })
      .catch((error: unknown) => {
        entry.state = "failed";
        const message = error instanceof Error ? error.message : String(error);
        if (message.startsWith(UNSEEDED)) {
          this.deps.onUnseeded();
          this.failWaiters(
            new ClusterUnavailableError(
              "redis",
              "Redis lost its data and is being re-seeded: the change was not stored",
            ),
          );
          return;
        }
        this.deps.onFailure(error);
        this.failWaiters(new ClusterUnavailableError("redis", `Redis did not store the change: ${message}`));
      });
  }

  /** Stored on the primary: acknowledged now, or once replicas confirm it. */
  private stored(entry: Pending): void {
    if (this.replicasWanted === 0 && this.awaitingReplicas.length === 0 && !this.waitInFlight) {
      this.acknowledge(entry);
      return;
    }
    this.awaitingReplicas.push(entry);
    this.pumpWait();
  }

  private acknowledge(entry: Pending): void {
    if (this.unacked.get(entry.id) === entry) this.unacked.delete(entry.id);
    const oldest = this.unacked.values().next().value?.n ?? Infinity;
    for (const waiter of this.waiters) {
      if (waiter.upTo >= oldest) continue;
      clearTimeout(waiter.timer);
      this.waiters.delete(waiter);
      waiter.resolve();
    }
  }

  /** One WAIT at a time; the writes stored while it runs go with the next one. */
  private pumpWait(): void {
    if (this.waitInFlight || this.held || this.stopped || this.awaitingReplicas.length === 0) return;
    const batch = this.awaitingReplicas;
    this.awaitingReplicas = [];
    const need = this.replicasWanted;
    if (need === 0) {
      for (const entry of batch) this.acknowledge(entry);
      return;
    }
    this.waitInFlight = true;
    const { timeoutMs } = this.deps;
    // Redis blocks this connection while it waits: leave room for the answer within the deadline
    const waitMs = Math.max(10, Math.floor(timeoutMs / 2));
    withDeadline(this.deps.conn.wait(need, waitMs), timeoutMs, "WAIT")
      .then((got) => {
        if (got >= need) {
          this.shortfallLogged = false;
          for (const entry of batch) this.acknowledge(entry);
          return;
        }
        this.shortfalls += 1;
        if (this.deps.waitSetting !== "auto") {
          // strict: not acknowledged; the same writes wait for the next confirmation
          this.awaitingReplicas.unshift(...batch);
          this.held = true;
          this.failWaiters(
            new ClusterUnavailableError(
              "redis",
              `only ${got} of ${need} Redis replica(s) confirmed the change within ${waitMs} ms`,
            ),
          );
          return;
        }
        if (!this.shortfallLogged) {
          this.shortfallLogged = true;
          this.deps.log.warn(
            "cluster: a Redis replica did not confirm writes in time; they rest on the primary alone",
            {
              replicas: got,
              wanted: need,
              waitMs,
            },
          );
        }
        for (const entry of batch) this.acknowledge(entry);
      })
      .catch((error: unknown) => {
        // stored on the primary, not confirmed: sent again (and waited for) after the outage
        for (const entry of batch) entry.state = "failed";
        this.deps.onFailure(error);
        this.failWaiters(
          new ClusterUnavailableError("redis", `Redis did not confirm the change: ${(error as Error).message}`),
        );
      })
      .finally(() => {
        this.waitInFlight = false;
        this.pumpWait();
      });
  }
}
