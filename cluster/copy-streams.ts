/**
 * The copy streams behind replicated acknowledgements: one long-lived stream from this node to
 * each of up to ACK_COPIES peers that are connected and answering, carrying this node's own
 * writes in order (`{"v","s","records"}`, `s` the index of the last one); the peer applies them
 * as it would gossip, waits for its own commit, and answers `{"op":"ack","s"}`. Gossip still
 * carries every write to every node: the stream is what lets this node know that one more disk
 * holds a write before it says the write happened (the ledger is copies.ts).
 */
import type { Stream } from "@libp2p/interface";
import { lpStream, type LengthPrefixedStream } from "it-length-prefixed-stream";
import type { Copies } from "./copies";
import { checkRecordBatchJson, countRejection, type Counters, type LagTracker, type Verdict } from "./replication";
import type { ClusterStore } from "./store";
import type { Logger } from "./types";
import { copyAnswerSchema, decodeJson, encodeJson, MAX_FRAME_BYTES, WIRE_VERSION } from "./wire";

/** records and JSON bytes per copy frame */
const FRAME_RECORDS = 1_000;
const FRAME_BYTES = 1024 * 1024;
const OPEN_TIMEOUT_MS = 5_000;
const RETRY_MS = 1_000;

export interface CopyStreamsDeps {
  copies: Copies;
  store: ClusterStore;
  log: Logger;
  counters: Counters;
  lag: LagTracker;
  maxClockSkewMs: number;
  /** peers that could hold copies now, best first: connected and answering heartbeats */
  candidates(): string[];
  /** a new stream of the copy protocol to a connected peer */
  open(peerId: string, signal: AbortSignal): Promise<Stream>;
  /** this node's own commit of what it applied so far (the file), never the replicated wait */
  committed(): Promise<void>;
  now(): number;
}

interface Link {
  peerId: string;
  controller: AbortController;
  stream?: Stream;
  lp?: LengthPrefixedStream<Stream>;
  pumping: boolean;
  closed: boolean;
}

type CopyFrame =
  { ok: true; s: number; records: Extract<Verdict, { ok: true }>["records"] } | { ok: false; reason: string };

/** Check one copy frame from `from`: gossip's record checks, plus the frame's index. */
export function checkCopyFrame(data: Uint8Array, from: string, wallNow: number, maxClockSkewMs: number): CopyFrame {
  let json: unknown;
  try {
    json = decodeJson(data);
  } catch {
    return { ok: false, reason: "malformed-json" };
  }
  const s = (json as { s?: unknown } | null)?.s;
  if (typeof s !== "number" || !Number.isSafeInteger(s) || s < 1) return { ok: false, reason: "malformed" };
  const verdict = checkRecordBatchJson(json, from, wallNow, maxClockSkewMs);
  return verdict.ok ? { ok: true, s, records: verdict.records } : verdict;
}

export class CopyStreams {
  private readonly links = new Map<string, Link>();
  /** peers that do not speak the copy protocol (an older version) or refused copies, until they reconnect */
  private readonly unable = new Set<string>();
  private readonly retryAt = new Map<string, number>();
  private readonly lifetime = new AbortController();
  private pumpScheduled = false;
  private readonly encoder = new TextEncoder();

  constructor(private readonly deps: CopyStreamsDeps) {}

  /** Match the links to the peers that can hold copies now; call on every change of the peers. */
  refresh(): void {
    if (this.lifetime.signal.aborted || !this.deps.copies.enabled) return;
    const usable = this.deps.candidates().filter((peerId) => !this.unable.has(peerId));
    this.deps.copies.setAble(usable.length);
    // ACK_COPIES links among the answering peers: one spare beyond the copies needed, so one slow peer does not hold answers
    const wanted = this.deps.copies.settings.copies;
    let open = usable.filter((peerId) => this.links.has(peerId)).length;
    const now = this.deps.now();
    for (const peerId of usable) {
      if (open >= wanted) break;
      if (this.links.has(peerId) || (this.retryAt.get(peerId) ?? 0) > now) continue;
      open += 1;
      void this.connect(peerId);
    }
  }

  /** The peer's connection closed: its link goes, and a new connection may speak another version. */
  forget(peerId: string): void {
    const link = this.links.get(peerId);
    if (link) this.drop(link);
    this.unable.delete(peerId);
    this.retryAt.delete(peerId);
    this.refresh();
  }

  /**
   * New local writes: send them on every link once per event-loop turn, so the writes of one turn
   * travel in one frame and cost the peer one commit. (Sending at the first microtask instead, to
   * get ahead of this node's own commit, made several small frames per sign-in and about doubled
   * the cluster's CPU per sign-in in bench:faults, for no shorter wait.)
   */
  pumpSoon(): void {
    if (this.pumpScheduled || this.lifetime.signal.aborted) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      for (const link of this.links.values()) void this.pump(link);
    });
  }

  stop(): void {
    this.lifetime.abort();
    for (const link of [...this.links.values()]) this.drop(link);
  }

  /** Serve a peer's copy stream: apply its writes, commit, confirm. */
  async serve(stream: Stream, from: string): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES });
    const signal = this.lifetime.signal;
    let confirmed = 0;
    let committedUpTo = 0;
    let writing = false;
    let warned = false;
    const confirm = async () => {
      if (writing) return;
      writing = true;
      try {
        while (committedUpTo > confirmed) {
          const s = committedUpTo;
          await lp.write(encodeJson({ op: "ack", s }), { signal });
          confirmed = s;
        }
      } catch (error) {
        stream.abort(error as Error);
      } finally {
        writing = false;
      }
    };
    for (;;) {
      let bytes: Uint8Array;
      try {
        bytes = (await lp.read({ signal })).subarray();
      } catch {
        // the writer closed its link, or the connection went: nothing to confirm any more
        stream.abort(new Error("copy stream ended"));
        return;
      }
      const frame = checkCopyFrame(bytes, from, this.deps.store.clock.wallNow(), this.deps.maxClockSkewMs);
      let reason = frame.ok ? undefined : frame.reason;
      if (frame.ok) {
        let rejected = 0;
        for (const record of frame.records) {
          const outcome = this.deps.store.applyRemote(record);
          if (outcome === "applied") this.deps.lag.add(record.stamp.t);
          else if (outcome === "rejected") rejected += 1;
        }
        if (rejected > 0) {
          countRejection(this.deps.counters, "record-rejected", rejected);
          reason = "record-rejected";
        }
      } else countRejection(this.deps.counters, `copy-${frame.reason}`);
      if (reason !== undefined) {
        // a row this node will not hold must never be confirmed as held
        this.deps.log.warn("cluster: refused a peer's copy stream", { from, reason });
        await lp.write(encodeJson({ op: "refused", reason }), { signal }).catch(() => {});
        stream.abort(new Error(`copy refused: ${reason}`));
        return;
      }
      const s = (frame as { s: number }).s;
      this.deps.committed().then(
        () => {
          if (s > committedUpTo) committedUpTo = s;
          void confirm();
        },
        (error: unknown) => {
          if (warned) return;
          warned = true;
          this.deps.log.warn("cluster: cannot confirm a peer's copies: this node cannot commit them", {
            from,
            error: (error as Error).message,
          });
        },
      );
    }
  }

  private async connect(peerId: string): Promise<void> {
    const link: Link = { peerId, controller: new AbortController(), pumping: false, closed: false };
    this.links.set(peerId, link);
    const signal = AbortSignal.any([this.lifetime.signal, link.controller.signal]);
    try {
      const stream = await this.deps.open(peerId, AbortSignal.any([signal, AbortSignal.timeout(OPEN_TIMEOUT_MS)]));
      if (link.closed) {
        stream.abort(new Error("copy link no longer wanted"));
        return;
      }
      link.stream = stream;
      link.lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES });
    } catch (error) {
      this.links.delete(peerId);
      if (this.lifetime.signal.aborted || link.closed) return;
      if ((error as Error).name === "UnsupportedProtocolError") {
        this.unable.add(peerId);
        this.deps.log.warn("cluster: a peer does not take copies (an older version?); answers do not wait for it", {
          peer: peerId,
        });
      } else this.retryAt.set(peerId, this.deps.now() + RETRY_MS);
      this.refresh();
      return;
    }
    this.deps.copies.openLink(peerId);
    void this.readAnswers(link, signal);
    void this.pump(link);
  }

  private async pump(link: Link): Promise<void> {
    if (link.pumping || link.closed || !link.lp) return;
    link.pumping = true;
    try {
      for (;;) {
        const next = this.deps.copies.next(link.peerId, FRAME_RECORDS, FRAME_BYTES);
        if (!next) break;
        const frame = this.encoder.encode(`{"v":${WIRE_VERSION},"s":${next.upTo},"records":[${next.json.join(",")}]}`);
        await link.lp.write(frame, { signal: link.controller.signal });
      }
    } catch (error) {
      if (!link.closed) this.fail(link, error as Error);
    } finally {
      link.pumping = false;
    }
  }

  private async readAnswers(link: Link, signal: AbortSignal): Promise<void> {
    try {
      for (;;) {
        const answer = copyAnswerSchema.parse(decodeJson((await link.lp!.read({ signal })).subarray()));
        if (answer.op === "ack") {
          this.deps.copies.acked(link.peerId, answer.s);
          continue;
        }
        this.unable.add(link.peerId);
        this.deps.log.warn("cluster: a peer refused copies of this node's writes; answers do not wait for it", {
          peer: link.peerId,
          reason: answer.reason,
        });
        this.drop(link);
        this.refresh();
        return;
      }
    } catch (error) {
      if (!link.closed) this.fail(link, error as Error);
    }
  }

  /** The link broke while the peer may still be there: try again shortly. */
  private fail(link: Link, error: Error): void {
    if (this.lifetime.signal.aborted) return;
    this.deps.log.info("cluster: copy link closed", { peer: link.peerId, error: error.message });
    this.drop(link);
    this.retryAt.set(link.peerId, this.deps.now() + RETRY_MS);
    this.refresh();
  }

  private drop(link: Link): void {
    if (link.closed) return;
    link.closed = true;
    link.controller.abort();
    link.stream?.abort(new Error("copy link closed"));
    if (this.links.get(link.peerId) === link) this.links.delete(link.peerId);
    this.deps.copies.closeLink(link.peerId);
  }
}
