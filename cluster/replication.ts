/**
 * Live replication: local writes go out in batches on the records topic; batches from peers pass
 * a topic validator (schema, version, size, origin, clock skew) before the store merges them.
 */
import type { GossipSub } from "@chainsafe/libp2p-gossipsub";
import { TopicValidatorResult, type Message, type PeerId } from "@libp2p/interface";
import type { ClusterStore, RecordEnvelope } from "./store";
import type { ClusterCounters, Logger } from "./types";
import { decodeJson, MAX_GOSSIP_BYTES, recordBatchSchema, toRecord, WIRE_VERSION } from "./wire";

export type RejectReason =
  "too-large" | "malformed-json" | "unknown-version" | "malformed" | "foreign-stamp" | "clock-skew" | "record-rejected";

export interface Counters {
  messagesIn: number;
  messagesOut: number;
  rejected: Record<string, number>;
}

/**
 * Count a rejection; returns true when it is worth a log line: the 1st, 10th, 100th… of a reason,
 * so a peer flooding bad messages cannot flood the log (the counters keep the exact numbers).
 */
export function countRejection(counters: Counters, reason: string, by = 1): boolean {
  const before = counters.rejected[reason] ?? 0;
  const after = before + by;
  counters.rejected[reason] = after;
  return Math.floor(Math.log10(after)) > (before === 0 ? -1 : Math.floor(Math.log10(before)));
}

/** now − stamp of records applied from gossip, kept for a minute. */
/** A node's counters at start, the same shape in both transports. */
export function newCounters(): ClusterCounters {
  return {
    messagesIn: 0,
    messagesOut: 0,
    rejected: {},
    catchUps: 0,
    catchUpFailures: 0,
    recordsPulled: 0,
    tombstonesCollected: 0,
  };
}

export class LagTracker {
  private samples: Array<{ at: number; lag: number }> = [];
  constructor(
    private readonly now: () => number,
    private readonly windowMs = 60_000,
    private readonly maxSamples = 10_000,
  ) {}

  add(stampT: number): void {
    const at = this.now();
    this.samples.push({ at, lag: Math.max(0, at - stampT) });
    if (this.samples.length > this.maxSamples) this.samples.splice(0, this.samples.length - this.maxSamples);
  }

  summary(): { samples: number; p50: number | null; max: number | null } {
    const horizon = this.now() - this.windowMs;
    this.samples = this.samples.filter((s) => s.at >= horizon);
    if (this.samples.length === 0) return { samples: 0, p50: null, max: null };
    const lags = this.samples.map((s) => s.lag).sort((a, b) => a - b);
    return { samples: lags.length, p50: lags[Math.floor((lags.length - 1) / 2)], max: lags[lags.length - 1] };
  }
}

export type Verdict = { ok: true; records: RecordEnvelope[] } | { ok: false; reason: RejectReason };

/** Check one gossip message from `from`; pure, so it can be tested alone. */
export function checkRecordBatch(data: Uint8Array, from: string, wallNow: number, maxClockSkewMs: number): Verdict {
  if (data.byteLength > MAX_GOSSIP_BYTES) return { ok: false, reason: "too-large" };
  let json: unknown;
  try {
    json = decodeJson(data);
  } catch {
    return { ok: false, reason: "malformed-json" };
  }
  return checkRecordBatchJson(json, from, wallNow, maxClockSkewMs);
}

/** The checks of `checkRecordBatch` past the bytes: also for the copy streams' frames (copy-streams.ts). */
export function checkRecordBatchJson(json: unknown, from: string, wallNow: number, maxClockSkewMs: number): Verdict {
  if (typeof json !== "object" || json === null || (json as { v?: unknown }).v !== WIRE_VERSION) {
    const hasVersion = typeof json === "object" && json !== null && typeof (json as { v?: unknown }).v === "number";
    return { ok: false, reason: hasVersion ? "unknown-version" : "malformed" };
  }
  const parsed = recordBatchSchema.safeParse(json);
  if (!parsed.success) return { ok: false, reason: "malformed" };
  const records = parsed.data.records.map(toRecord);
  for (const record of records) {
    // a node publishes only its own writes
    if (record.stamp.n !== from) return { ok: false, reason: "foreign-stamp" };
    if (record.stamp.t > wallNow + maxClockSkewMs) return { ok: false, reason: "clock-skew" };
  }
  return { ok: true, records };
}

export interface ReplicationDeps {
  pubsub: GossipSub;
  topic: string;
  store: ClusterStore;
  log: Logger;
  counters: Counters;
  lag: LagTracker;
  maxClockSkewMs: number;
}

export class Replication {
  private readonly checked = new WeakMap<Message, RecordEnvelope[]>();
  private queue: RecordEnvelope[] = [];
  private flushScheduled: NodeJS.Immediate | undefined;
  private unsubscribeStore: (() => void) | undefined;
  private stopped = false;
  private readonly encoder = new TextEncoder();

  constructor(private readonly deps: ReplicationDeps) {}

  start(): void {
    const { pubsub, topic, store } = this.deps;
    pubsub.topicValidators.set(topic, (peer, message) => this.validate(peer, message));
    pubsub.addEventListener("message", this.onMessage);
    pubsub.subscribe(topic);
    this.unsubscribeStore = store.onLocalWrite((record) => this.enqueue(record));
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribeStore?.();
    if (this.flushScheduled) clearImmediate(this.flushScheduled);
    this.flushScheduled = undefined;
    this.queue = [];
    const { pubsub, topic } = this.deps;
    pubsub.removeEventListener("message", this.onMessage);
    pubsub.topicValidators.delete(topic);
    try {
      pubsub.unsubscribe(topic);
    } catch (error) {
      this.deps.log.warn("cluster: unsubscribe failed", { topic, error: (error as Error).message });
    }
  }

  private validate(_peer: PeerId, message: Message): TopicValidatorResult {
    if (message.type !== "signed") {
      countRejection(this.deps.counters, "unsigned");
      return TopicValidatorResult.Reject;
    }
    const verdict = checkRecordBatch(
      message.data,
      message.from.toString(),
      this.deps.store.clock.wallNow(),
      this.deps.maxClockSkewMs,
    );
    if (!verdict.ok) {
      if (countRejection(this.deps.counters, verdict.reason)) {
        this.deps.log.warn("cluster: rejected a gossip message", {
          from: message.from.toString(),
          reason: verdict.reason,
          total: this.deps.counters.rejected[verdict.reason],
        });
      }
      return TopicValidatorResult.Reject;
    }
    this.checked.set(message, verdict.records);
    return TopicValidatorResult.Accept;
  }

  private readonly onMessage = (event: CustomEvent<Message>): void => {
    const message = event.detail;
    if (message.topic !== this.deps.topic) return;
    const records = this.checked.get(message);
    if (!records) return;
    this.checked.delete(message);
    this.deps.counters.messagesIn += 1;
    let rejected = 0;
    for (const record of records) {
      const outcome = this.deps.store.applyRemote(record);
      if (outcome === "applied") this.deps.lag.add(record.stamp.t);
      else if (outcome === "rejected") rejected += 1;
    }
    if (rejected > 0) countRejection(this.deps.counters, "record-rejected", rejected);
  };

  private enqueue(record: RecordEnvelope): void {
    if (this.stopped) return;
    this.queue.push(record);
    // writes made in one turn of the event loop travel together
    this.flushScheduled ??= setImmediate(() => {
      this.flushScheduled = undefined;
      this.flush();
    });
  }

  private flush(): void {
    const records = this.queue;
    this.queue = [];
    const budget = MAX_GOSSIP_BYTES - 64;
    let batch: string[] = [];
    let size = 0;
    const send = () => {
      if (batch.length === 0) return;
      const data = this.encoder.encode(`{"v":${WIRE_VERSION},"records":[${batch.join(",")}]}`);
      batch = [];
      size = 0;
      this.deps.counters.messagesOut += 1;
      this.deps.pubsub.publish(this.deps.topic, data).catch((error: unknown) => {
        this.deps.log.warn("cluster: publish failed; catch-up will carry the write", {
          error: (error as Error).message,
        });
      });
    };
    for (const record of records) {
      const json = JSON.stringify(record);
      const bytes = Buffer.byteLength(json);
      if (bytes > budget) {
        this.deps.log.warn("cluster: record too large for gossip; catch-up will carry it", {
          table: record.table,
          key: record.key,
          bytes,
        });
        continue;
      }
      if (size + bytes + 1 > budget || batch.length >= 1000) send();
      batch.push(json);
      size += bytes + 1;
    }
    send();
  }
}
