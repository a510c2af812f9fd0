/**
 * Catch-up over a stream protocol. The puller sends the digests of its tables; the peer answers
 * with every row of each bucket that differs (all rows of a table the puller lacks: a snapshot),
 * bucket by bucket in length-prefixed chunks, then a `done` frame. The puller merges them as it
 * would gossip. Both sides work in slices of at most ~20 ms and yield to the event loop between
 * them, so pings, gossip and HTTP keep flowing during a million-row snapshot. A pull cut short
 * keeps what it applied; the digests (kept up to date row by row) then show the finished buckets
 * as equal, so the next pull resumes where this one stopped.
 */
import type { Stream } from "@libp2p/interface";
import { lpStream, type LengthPrefixedStream } from "it-length-prefixed-stream";
import { decodeBuckets, differingBuckets, encodeBuckets } from "./digest";
import type { ClusterStore } from "./store";
import type { Logger } from "./types";
import {
  checkRowsFrame,
  checkSyncRow,
  decodeJson,
  encodeJson,
  MAX_FRAME_BYTES,
  MAX_SYNC_RECORD_BYTES,
  SYNC_CHUNK_BYTES,
  syncRequestSchema,
  syncResponseSchema,
  WIRE_VERSION,
  type SyncRequest,
} from "./wire";

export interface SyncDeps {
  store: ClusterStore;
  log: Logger;
  /** how long one slice of work may hold the event loop; default 20 ms */
  sliceMs?: number;
  /** a frame not read or written within this aborts the stream; default none */
  idleMs?: number;
}

/** The stream's signal, tightened to `idleMs` for one read or write. */
function step(signal: AbortSignal, idleMs: number | undefined): AbortSignal {
  return idleMs === undefined ? signal : AbortSignal.any([signal, AbortSignal.timeout(idleMs)]);
}

export interface PullResult {
  received: number;
  applied: number;
  rejected: number;
  differingBuckets: number;
}

const DEFAULT_SLICE_MS = 20;

/** Lets other work run: a macrotask turn, not a microtask, so timers and sockets get theirs. */
export const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Counts work and yields when the current slice has run for `sliceMs`. */
export class Slicer {
  private started = performance.now();
  private steps = 0;
  constructor(private readonly sliceMs: number) {}
  /** call once per unit of work; awaits only when a slice is over (checks the clock every 64 units) */
  async step(): Promise<void> {
    this.steps += 1;
    if ((this.steps & 63) !== 0) return;
    if (performance.now() - this.started < this.sliceMs) return;
    await yieldToEventLoop();
    this.started = performance.now();
  }
}

export function digestRequest(store: ClusterStore): SyncRequest {
  const tables: SyncRequest["tables"] = {};
  for (const name of store.tableNames()) {
    const digest = store.digestOf(name);
    tables[name] = { count: digest.count, buckets: encodeBuckets(digest.buckets) };
  }
  return { v: WIRE_VERSION, op: "digest", tables };
}

async function readFrame(lp: LengthPrefixedStream<Stream>, signal: AbortSignal): Promise<unknown> {
  const bytes = await lp.read({ signal });
  return decodeJson(bytes.subarray());
}

/** Rows per frame to start with; adjusted so frames stay near SYNC_CHUNK_BYTES. */
const FIRST_FRAME_ROWS = 512;
const MAX_FRAME_ROWS = 8_192;

/** One rows frame: `[key, value, t, c, writer]` per row, writers listed once per frame. */
class RowsFrame {
  rows: unknown[][] = [];
  private nodes = new Map<string, number>();
  constructor(private readonly table: string) {}

  add(key: string, value: unknown, t: number, c: number, n: string): void {
    let w = this.nodes.get(n);
    if (w === undefined) {
      w = this.nodes.size;
      this.nodes.set(n, w);
    }
    this.rows.push([key, value, t, c, w]);
  }

  nodeAt(w: number): string {
    return [...this.nodes.keys()][w]!;
  }

  /** One JSON.stringify per frame: far cheaper than one per row plus concatenation. */
  text(): string {
    return JSON.stringify({ op: "rows", table: this.table, nodes: [...this.nodes.keys()], rows: this.rows });
  }
}

/**
 * The frames answering one digest request: rows of differing buckets, bucket by bucket, about
 * SYNC_CHUNK_BYTES each, then `done`. Yields to the event loop between slices of work.
 */
export async function* syncFrames(
  store: ClusterStore,
  request: SyncRequest,
  deps: Pick<SyncDeps, "log" | "sliceMs">,
): AsyncGenerator<Uint8Array> {
  const encoder = new TextEncoder();
  const slicer = new Slicer(deps.sliceMs ?? DEFAULT_SLICE_MS);
  let differing = 0;
  let sent = 0;
  let frameRows = FIRST_FRAME_ROWS;
  function* encode(frame: RowsFrame, table: string): Generator<Uint8Array> {
    const text = frame.text();
    if (text.length <= MAX_FRAME_BYTES / 2) {
      // aim the next frame at SYNC_CHUNK_BYTES from this one's bytes per row
      const perRow = text.length / frame.rows.length;
      frameRows = Math.max(1, Math.min(MAX_FRAME_ROWS, Math.floor(SYNC_CHUNK_BYTES / perRow)));
      sent += frame.rows.length;
      yield encoder.encode(text);
      return;
    }
    // large rows: one frame per row, leaving out any row too large to carry
    frameRows = 1;
    for (const [key, value, t, c, w] of frame.rows) {
      const one = new RowsFrame(table);
      one.add(key as string, value, t as number, c as number, frame.nodeAt(w as number));
      const single = one.text();
      if (single.length > MAX_SYNC_RECORD_BYTES) {
        deps.log.warn("cluster: record too large for catch-up", { table, key, bytes: single.length });
        continue;
      }
      sent += 1;
      yield encoder.encode(single);
    }
  }
  for (const table of store.tableNames()) {
    const theirs = request.tables[table];
    const buckets = differingBuckets(store.digestOf(table), theirs ? decodeBuckets(theirs.buckets) : undefined);
    if (buckets.size === 0) continue;
    differing += buckets.size;
    let frame = new RowsFrame(table);
    for (const row of store.cursorInBuckets(table, buckets)) {
      frame.add(row.key, row.value, row.t, row.c, row.n);
      if (frame.rows.length >= frameRows) {
        yield* encode(frame, table);
        frame = new RowsFrame(table);
      }
      await slicer.step();
    }
    if (frame.rows.length > 0) yield* encode(frame, table);
  }
  yield encodeJson({ op: "done", differingBuckets: differing, records: sent });
}

/**
 * Merge the frames of one answer into the store, in slices. Throws on a malformed frame or a
 * refusal; what was applied before stays applied (the next pull resumes from there).
 */
export async function applyFrames(
  frames: AsyncIterable<unknown>,
  store: ClusterStore,
  result: PullResult,
  sliceMs = DEFAULT_SLICE_MS,
): Promise<void> {
  const slicer = new Slicer(sliceMs);
  for await (const frame of frames) {
    const { op, table, nodes, rows } = (frame ?? {}) as Record<string, unknown>;
    if (op === "rows" && Array.isArray(rows)) {
      if (!checkRowsFrame(table, nodes)) throw new Error("malformed sync frame");
      for (const raw of rows) {
        const record = checkSyncRow(table as string, nodes, raw);
        result.received += 1;
        const outcome = record ? store.applyRemote(record, "sync") : "rejected";
        if (outcome === "applied") result.applied += 1;
        else if (outcome === "rejected") result.rejected += 1;
        await slicer.step();
      }
      continue;
    }
    const parsed = syncResponseSchema.parse(frame);
    if (parsed.op === "error") throw new Error(`peer refused the sync: ${parsed.message}`);
    if (parsed.op === "done") {
      result.differingBuckets = parsed.differingBuckets;
      return;
    }
    throw new Error("malformed sync frame");
  }
  throw new Error("the sync stream ended before its done frame");
}

/** Answer one peer's pull on an inbound stream. */
export async function serveSync(stream: Stream, deps: SyncDeps, signal: AbortSignal): Promise<void> {
  const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES });
  try {
    const parsed = syncRequestSchema.safeParse(await readFrame(lp, step(signal, deps.idleMs)));
    if (!parsed.success || parsed.data.v !== WIRE_VERSION) {
      await lp.write(encodeJson({ op: "error", message: "bad sync request" }), { signal });
      await stream.close({ signal });
      return;
    }
    for await (const frame of syncFrames(deps.store, parsed.data, deps)) {
      signal.throwIfAborted();
      await lp.write(frame, { signal: step(signal, deps.idleMs) });
    }
    await stream.close({ signal });
  } catch (error) {
    stream.abort(error as Error);
    throw error;
  }
}

/** Pull what we lack from the peer at the other end of `stream`. */
export async function pullSync(
  stream: Stream,
  deps: SyncDeps,
  signal: AbortSignal,
  result: PullResult = { received: 0, applied: 0, rejected: 0, differingBuckets: 0 },
): Promise<PullResult> {
  const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES });
  try {
    await lp.write(encodeJson(digestRequest(deps.store)), { signal });
    await stream.closeWrite({ signal });
    async function* frames() {
      for (;;) yield await readFrame(lp, step(signal, deps.idleMs));
    }
    await applyFrames(frames(), deps.store, result, deps.sliceMs);
    await stream.close({ signal });
    return result;
  } catch (error) {
    stream.abort(error as Error);
    throw error;
  }
}
