/**
 * Catch-up over a stream protocol. The puller sends the digests of its tables (JSON); the peer
 * answers with every row of each bucket that differs (all rows of a table the puller lacks: a
 * snapshot), bucket by bucket, in binary frames that carry the records as the store holds them
 * (see codec.ts) and the dictionary entries they use, then a JSON `done` frame. The puller checks
 * each row with the table's schema and merges it as it would gossip. Both sides work in slices of at most ~20 ms and yield to the event loop between
 * them, so pings, gossip and HTTP keep flowing during a million-row snapshot. A pull cut short
 * keeps what it applied; the digests (kept up to date row by row) then show the finished buckets
 * as equal, so the next pull resumes where this one stopped.
 */
import type { Stream } from "@libp2p/interface";
import { lpStream, type LengthPrefixedStream } from "it-length-prefixed-stream";
import {
  ByteWriter,
  CodecError,
  cursor,
  readString,
  readVarint,
  writeDictionaryEntries,
  type Dictionary,
} from "./codec";
import { decodeBuckets, differingBuckets, encodeBuckets } from "./digest";
import { DictionaryMapping, TABLE_NAME, type ClusterStore } from "./store";
import type { Logger } from "./types";
import {
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
  /** how long one slice of work may hold the event loop; default 8 ms */
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

const DEFAULT_SLICE_MS = 8;

export { Slicer, yieldToEventLoop } from "./slicer";
import { Slicer } from "./slicer";

export function digestRequest(store: ClusterStore): SyncRequest {
  const tables: SyncRequest["tables"] = {};
  for (const name of store.tableNames()) {
    const digest = store.digestOf(name);
    tables[name] = { count: digest.count, buckets: encodeBuckets(digest.buckets) };
  }
  return { v: WIRE_VERSION, op: "digest", tables };
}

async function readFrame(lp: LengthPrefixedStream<Stream>, signal: AbortSignal): Promise<Buffer> {
  const bytes = (await lp.read({ signal })).subarray();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// binary frames of an answer; a frame starting with "{" is JSON (done, error)
const FRAME_DICT = 0x01;
const FRAME_TABLE = 0x02;
const FRAME_ROWS = 0x03;
const JSON_FRAME = 0x7b;

/** The dictionary entries (shapes, pooled strings, writers) added since the last call, as one frame. */
class DictionaryCursor {
  shapes = 0;
  strings = 0;
  writers = 0;
  constructor(private readonly dict: Dictionary) {}

  frame(): Uint8Array | undefined {
    const { shapes, strings, writers } = this.dict;
    if (this.shapes === shapes.length && this.strings === strings.length && this.writers === writers.length) {
      return undefined;
    }
    const w = new ByteWriter(1024);
    w.u8(FRAME_DICT);
    writeDictionaryEntries(w, this.dict, this);
    this.shapes = shapes.length;
    this.strings = strings.length;
    this.writers = writers.length;
    return w.take();
  }
}

/** Read entries written by `writeDictionaryEntries` into a mapping; they must follow the ones it has. */
export function readDictionaryEntries(b: Buffer, mapping: DictionaryMapping): void {
  const section = (have: number, add: () => void) => {
    const from = readVarint(b);
    const count = readVarint(b);
    if (from !== have) throw new CodecError(`dictionary entries out of order (${from}, expected ${have})`);
    for (let i = 0; i < count; i += 1) add();
  };
  section(mapping.theirs.shapes.length, () => {
    const n = readVarint(b);
    if (n > 4096) throw new CodecError("a shape with too many fields");
    const fields: string[] = [];
    for (let i = 0; i < n; i += 1) fields.push(readString(b));
    mapping.addShape(fields);
  });
  section(mapping.theirs.strings.length, () => mapping.addString(readString(b)));
  section(mapping.theirs.writers.length, () => {
    const node = readString(b);
    if (node.length === 0 || node.length > 128) throw new CodecError("a writer id of a bad length");
    mapping.addWriter(node);
  });
}

/**
 * The frames answering one digest request: for each table that differs, a table frame (how many
 * rows come), then its rows of the differing buckets, bucket by bucket, as the store holds them
 * (no JSON, no string per row), about SYNC_CHUNK_BYTES a frame, each preceded by the dictionary
 * entries it may use; then `done`. Yields to the event loop between slices of work.
 */
export async function* syncFrames(
  store: ClusterStore,
  request: SyncRequest,
  deps: Pick<SyncDeps, "log" | "sliceMs">,
): AsyncGenerator<Uint8Array> {
  const slicer = new Slicer(deps.sliceMs ?? DEFAULT_SLICE_MS);
  const dictionary = new DictionaryCursor(store.dictionary);
  let differing = 0;
  let sent = 0;
  const w = new ByteWriter(SYNC_CHUNK_BYTES * 2);
  for (const table of store.tableNames()) {
    const theirs = request.tables[table];
    const buckets = differingBuckets(store.digestOf(table), theirs ? decodeBuckets(theirs.buckets) : undefined);
    if (buckets.size === 0) continue;
    differing += buckets.size;
    // the table's slots in the order they go out, in steps the event loop gets between
    const steps = store.slotsInBucketsSteps(table, buckets);
    let ordered = steps.next();
    while (!ordered.done) {
      if (slicer.over()) await slicer.pause();
      ordered = steps.next();
    }
    const slots = ordered.value;
    const head = new ByteWriter(64);
    head.u8(FRAME_TABLE);
    head.string(table);
    head.varint(slots.length);
    yield head.take();
    const begin = () => {
      w.pos = 0;
      w.u8(FRAME_ROWS);
      w.string(table);
      return w.pos;
    };
    const skipped = { count: 0 };
    let next = 0;
    while (next < slots.length) {
      const empty = begin();
      const before = next;
      next = store.copyRecords(table, slots, next, w, SYNC_CHUNK_BYTES, MAX_SYNC_RECORD_BYTES, skipped);
      if (w.pos > empty) {
        const dict = dictionary.frame();
        if (dict) yield dict;
        sent += next - before;
        yield w.take();
      }
      if (slicer.over()) await slicer.pause();
    }
    if (skipped.count > 0) {
      deps.log.warn("cluster: records too large for catch-up", { table, records: skipped.count });
      sent -= skipped.count;
    }
  }
  yield encodeJson({ op: "done", differingBuckets: differing, records: sent });
}

/**
 * Merge the frames of one answer into the store, in slices. Throws on a malformed frame or a
 * refusal; what was applied before stays applied (the next pull resumes from there).
 */
export async function applyFrames(
  frames: AsyncIterable<Buffer>,
  store: ClusterStore,
  result: PullResult,
  sliceMs = DEFAULT_SLICE_MS,
): Promise<void> {
  const slicer = new Slicer(sliceMs);
  const mapping = new DictionaryMapping(store.dictionary);
  for await (const frame of frames) {
    const kind = frame[0];
    if (kind === JSON_FRAME) {
      const parsed = syncResponseSchema.parse(decodeJson(frame));
      if (parsed.op === "error") throw new Error(`peer refused the sync: ${parsed.message}`);
      if (parsed.op === "done") {
        store.restored();
        result.differingBuckets = parsed.differingBuckets;
        return;
      }
      throw new Error("malformed sync frame");
    }
    try {
      cursor.pos = 1;
      if (kind === FRAME_DICT) {
        readDictionaryEntries(frame, mapping);
        continue;
      }
      const table = readString(frame);
      if (!TABLE_NAME.test(table)) throw new CodecError("a frame names no table");
      if (kind === FRAME_TABLE) {
        store.expectRows(table, Math.min(readVarint(frame), 1 << 26));
        continue;
      }
      if (kind !== FRAME_ROWS) throw new CodecError(`unknown frame ${kind}`);
      let pos = cursor.pos;
      while (pos < frame.length) {
        cursor.pos = pos;
        const next = readVarint(frame) + cursor.pos;
        if (next > frame.length) throw new CodecError("a record runs past its frame");
        result.received += 1;
        const outcome = store.applyEncoded(table, frame, pos, mapping, "sync");
        if (outcome === "applied") result.applied += 1;
        else if (outcome === "rejected") result.rejected += 1;
        pos = next;
        if (slicer.due()) {
          // the clock moves past this slice's stamps before anything else runs (a local write)
          store.restored();
          await slicer.pause();
        }
      }
      store.restored();
    } catch (error) {
      store.restored();
      if (error instanceof CodecError) throw new Error(`malformed sync frame: ${error.message}`);
      throw error;
    }
  }
  throw new Error("the sync stream ended before its done frame");
}

/** Answer one peer's pull on an inbound stream. */
export async function serveSync(stream: Stream, deps: SyncDeps, signal: AbortSignal): Promise<void> {
  const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES });
  try {
    const parsed = syncRequestSchema.safeParse(decodeJson(await readFrame(lp, step(signal, deps.idleMs))));
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
