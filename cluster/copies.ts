/**
 * The ledger of replicated acknowledgements (gossip mode, ACK_COPIES ≥ 2): which of this node's
 * own writes a peer has confirmed it holds on its disk, and the answers waiting for that.
 *
 * Every local write gets the next index. Each copy link (one stream to one peer, see
 * copy-streams.ts) is sent every write from the buffer's start, in order, and the peer confirms
 * "committed everything up to index i": so a link covers the contiguous range it was sent, and a
 * write is copied once `need()` links confirm an index at or past it. Writes copied that many
 * times leave the buffer; a link opened later starts at the buffer's start, so a peer that
 * (re)connects is sent what is not copied yet, and a lagging link skips what others copied.
 *
 * Pure bookkeeping (no streams, no timers but the deadline of the oldest waiter), so it can be
 * tested alone.
 */
import { ClusterUnavailableError } from "./errors";
import type { ClusterStore, RecordEnvelope } from "./store";
import type { Logger } from "./types";

export interface AckSettings {
  /** copies an answer waits for, this node's own included: 1 = this node's commit only */
  copies: number;
  /** how long an answer waits for a peer's confirmation */
  timeoutMs: number;
  /** past the timeout: false answers with the copies known (counted, logged); true refuses (503) */
  strict: boolean;
}

export const DEFAULT_ACK_SETTINGS: AckSettings = { copies: 2, timeoutMs: 2_000, strict: false };

export interface AckCounters {
  /** answers that waited and got their copies */
  copied: number;
  /** answers given on this node's copy alone because no peer could hold one (a lone node) */
  alone: number;
  /** answers given past ACK_TIMEOUT_MS with this node's copy only (lenient) */
  timedOut: number;
  /** answers refused past ACK_TIMEOUT_MS (strict) */
  refused: number;
  /** writes dropped from the copy buffer before any peer confirmed them (no peer answered for long) */
  abandoned: number;
}

export interface AckStatus extends AckSettings {
  counters: AckCounters;
  /** answers waiting now */
  waiting: number;
  /** local writes not yet confirmed by enough peers */
  buffered: number;
  /** peers that can hold a copy now (connected, answering, speaking the copy protocol) */
  able: number;
  /** how long answers waited for their copies over the last minute */
  waitMs: { samples: number; p50: number | null; p99: number | null; max: number | null };
}

interface Link {
  /** the last index sent on the link (everything from the link's start up to it, in order) */
  sent: number;
  /** the last index the peer confirmed it committed */
  acked: number;
}

interface Waiter {
  target: number;
  startedAt: number;
  deadline: number;
  resolve(): void;
  reject(error: Error): void;
}

export interface CopiesDeps {
  log: Logger;
  now(): number;
  /** told when there is something new to send (the streams then pump their links) */
  onWrite(): void;
}

/** past this many buffered writes, the oldest half is given up (no peer confirmed them) */
const DEFAULT_MAX_BUFFERED = 100_000;
const WAIT_SAMPLES_WINDOW_MS = 60_000;
const MAX_WAIT_SAMPLES = 10_000;
const LOG_EVERY_MS = 10_000;

export class Copies {
  private written = 0;
  /** index of buffer[0]; every write below it is settled (copied, or alone, or abandoned) */
  private base = 1;
  private buffer: RecordEnvelope[] = [];
  private readonly links = new Map<string, Link>();
  private waiters: Waiter[] = [];
  private head = 0;
  private able = 0;
  private abandonedUpTo = 0;
  private timer: NodeJS.Timeout | undefined;
  private samples: Array<{ at: number; ms: number }> = [];
  private lastLogAt = -Infinity;
  private unlogged = 0;
  private stopped = false;
  readonly counters: AckCounters = { copied: 0, alone: 0, timedOut: 0, refused: 0, abandoned: 0 };

  constructor(
    readonly settings: AckSettings,
    private readonly deps: CopiesDeps,
    private readonly maxBuffered = DEFAULT_MAX_BUFFERED,
  ) {}

  get enabled(): boolean {
    return this.settings.copies > 1;
  }

  /** Number this node's local writes from now on. */
  attach(store: ClusterStore): () => void {
    if (!this.enabled) return () => {};
    return store.onLocalWrite((record) => this.record(record));
  }

  record(record: RecordEnvelope): void {
    if (!this.enabled || this.stopped) return;
    this.written += 1;
    if (this.able === 0) {
      // nobody to copy to: nothing is kept for a peer that may connect later (catch-up brings it)
      this.base = this.written + 1;
    } else {
      this.buffer.push(record);
      if (this.buffer.length > this.maxBuffered) this.abandon(Math.ceil(this.buffer.length / 2));
    }
    this.deps.onWrite();
  }

  /** Peers needed per write now: ACK_COPIES − 1, or fewer when fewer peers can hold a copy. */
  need(): number {
    return Math.min(this.settings.copies - 1, this.able);
  }

  /** How many peers can hold a copy right now (connected, answering, speaking the protocol). */
  setAble(able: number): void {
    if (able === this.able) return;
    this.able = able;
    if (able === 0) {
      this.buffer = [];
      this.base = this.written + 1;
      for (const link of this.links.values()) link.sent = Math.max(link.sent, this.written);
    }
    this.settle();
  }

  /**
   * Resolves once every local write made so far is held by `need()` peers (or at once when there
   * are none to ask); past `timeoutMs`, resolves anyway (counted and logged) or, strict, rejects.
   */
  wait(): Promise<void> {
    if (!this.enabled || this.stopped) return Promise.resolve();
    const target = this.written;
    if (this.need() === 0) {
      this.counters.alone += 1;
      return Promise.resolve();
    }
    // nothing written since everything was settled (copied, or given up and counted then)
    if (target < this.base) return Promise.resolve();
    if (this.copiedBy(target) >= this.need()) return Promise.resolve();
    const now = this.deps.now();
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ target, startedAt: now, deadline: now + this.settings.timeoutMs, resolve, reject });
      this.arm();
    });
  }

  // --- links (called by the streams) ---

  /** A link to `peerId` opened: it is sent everything not copied yet, from the buffer's start. */
  openLink(peerId: string): void {
    this.links.set(peerId, { sent: this.base - 1, acked: this.base - 1 });
  }

  closeLink(peerId: string): void {
    this.links.delete(peerId);
    this.settle();
  }

  hasLink(peerId: string): boolean {
    return this.links.has(peerId);
  }

  /**
   * The next records to send on a link (at most `maxRecords` and about `maxBytes` of JSON), with
   * the index of the last one; marks them sent. Undefined when the link is up to date.
   */
  next(peerId: string, maxRecords: number, maxBytes: number): { upTo: number; json: string[] } | undefined {
    const link = this.links.get(peerId);
    if (!link) return undefined;
    if (link.sent < this.base - 1) link.sent = this.base - 1; // what others copied meanwhile is skipped
    if (link.sent >= this.written) return undefined;
    const json: string[] = [];
    let bytes = 0;
    let index = link.sent + 1;
    while (index <= this.written && json.length < maxRecords) {
      const text = JSON.stringify(this.buffer[index - this.base]);
      if (json.length > 0 && bytes + text.length > maxBytes) break;
      json.push(text);
      bytes += text.length + 1;
      index += 1;
    }
    link.sent = index - 1;
    return { upTo: link.sent, json };
  }

  /** The peer at the other end of a link committed everything it was sent up to `upTo`. */
  acked(peerId: string, upTo: number): void {
    const link = this.links.get(peerId);
    if (!link || upTo <= link.acked || upTo > link.sent) return;
    link.acked = upTo;
    this.settle();
  }

  status(): AckStatus {
    return {
      ...this.settings,
      counters: { ...this.counters },
      waiting: this.waiters.length - this.head,
      buffered: this.buffer.length,
      able: this.able,
      waitMs: this.waitSummary(),
    };
  }

  /** Stop: answers still waiting are given (this node's copy is committed or the file reports why). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    for (let i = this.head; i < this.waiters.length; i++) this.waiters[i]!.resolve();
    this.waiters = [];
    this.head = 0;
  }

  // --- internals ---

  /** How many links confirmed index `target` (a link covers the contiguous range it was sent). */
  private copiedBy(target: number): number {
    let n = 0;
    for (const link of this.links.values()) if (link.acked >= target) n += 1;
    return n;
  }

  /** Resolve the waiters that are copied (a prefix: targets only grow), and trim the buffer. */
  private settle(): void {
    const need = this.need();
    while (this.head < this.waiters.length) {
      const waiter = this.waiters[this.head]!;
      if (need === 0) this.counters.alone += 1;
      else if (this.copiedBy(waiter.target) >= need) {
        this.counters.copied += 1;
        this.sample(waiter.startedAt);
      } else if (waiter.target <= this.abandonedUpTo) {
        this.expire(waiter, "abandoned");
        this.head += 1;
        continue;
      } else break;
      waiter.resolve();
      this.head += 1;
    }
    this.compact();
    if (need > 0) {
      // the need-th highest confirmation: every write up to it is held by `need` peers
      const acks = [...this.links.values()].map((l) => l.acked).sort((a, b) => b - a);
      const copied = acks[need - 1];
      if (copied !== undefined && copied >= this.base) this.drop(copied - this.base + 1);
    }
    this.arm();
  }

  private drop(count: number): void {
    this.buffer = this.buffer.slice(count);
    this.base += count;
  }

  /** The buffer is full: nobody confirmed for a long while. Give up its oldest `count` writes. */
  private abandon(count: number): void {
    this.counters.abandoned += count;
    this.abandonedUpTo = this.base + count - 1;
    this.drop(count);
    this.deps.log.warn("cluster: no peer confirmed copies of this node's writes for a long while; gave up the oldest", {
      abandoned: count,
      buffered: this.buffer.length,
    });
    this.settle();
  }

  private expire(waiter: Waiter, why: "timeout" | "abandoned"): void {
    this.unlogged += 1;
    const now = this.deps.now();
    if (now - this.lastLogAt >= LOG_EVERY_MS) {
      this.deps.log.warn(
        this.settings.strict
          ? "cluster: no peer confirmed a copy in time; refused the answer (ACK_STRICT)"
          : "cluster: no peer confirmed a copy in time; answered with this node's copy only",
        {
          event: "ack-timeout",
          why,
          answers: this.unlogged,
          timeoutMs: this.settings.timeoutMs,
          peers: this.able,
        },
      );
      this.lastLogAt = now;
      this.unlogged = 0;
    }
    if (this.settings.strict) {
      this.counters.refused += 1;
      waiter.reject(
        new ClusterUnavailableError(
          "copies",
          `no other node confirmed a copy of the change within ${this.settings.timeoutMs} ms`,
        ),
      );
    } else {
      this.counters.timedOut += 1;
      waiter.resolve();
    }
  }

  /** One timer, for the oldest waiter's deadline (deadlines grow with the queue). */
  private arm(): void {
    if (this.timer || this.head >= this.waiters.length || this.stopped) return;
    const delay = Math.max(0, this.waiters[this.head]!.deadline - this.deps.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const now = this.deps.now();
      while (this.head < this.waiters.length && this.waiters[this.head]!.deadline <= now) {
        this.expire(this.waiters[this.head]!, "timeout");
        this.head += 1;
      }
      this.compact();
      this.arm();
    }, delay);
    this.timer.unref?.();
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.waiters.length) {
      this.waiters = this.waiters.slice(this.head);
      this.head = 0;
    } else if (this.head === this.waiters.length && this.head > 0) {
      this.waiters = [];
      this.head = 0;
    }
  }

  private sample(startedAt: number): void {
    const at = this.deps.now();
    this.samples.push({ at, ms: at - startedAt });
    if (this.samples.length > MAX_WAIT_SAMPLES) this.samples.splice(0, this.samples.length - MAX_WAIT_SAMPLES);
  }

  private waitSummary(): AckStatus["waitMs"] {
    const horizon = this.deps.now() - WAIT_SAMPLES_WINDOW_MS;
    this.samples = this.samples.filter((s) => s.at >= horizon);
    if (this.samples.length === 0) return { samples: 0, p50: null, p99: null, max: null };
    const ms = this.samples.map((s) => s.ms).sort((a, b) => a - b);
    const at = (p: number) => ms[Math.min(ms.length - 1, Math.ceil(p * ms.length) - 1)]!;
    return { samples: ms.length, p50: at(0.5), p99: at(0.99), max: ms[ms.length - 1]! };
  }
}
