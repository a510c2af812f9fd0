/**
 * Catch-up over a stream protocol. The puller sends the digests of its tables; the peer answers
 * with every row of each bucket that differs (all rows of a table the puller lacks: a snapshot),
 * in length-prefixed chunks, then a `done` frame. The puller merges them as it would gossip.
 * Each side pulls from the other, so a healed partition converges both ways.
 */
import type { Stream } from "@libp2p/interface";
import { lpStream, type LengthPrefixedStream } from "it-length-prefixed-stream";
import { bucketOf, decodeBuckets, differingBuckets, encodeBuckets, type DigestCache } from "./digest";
import type { ClusterStore } from "./store";
import type { Logger } from "./types";
import {
  decodeJson,
  encodeJson,
  MAX_FRAME_BYTES,
  MAX_SYNC_RECORD_BYTES,
  SYNC_CHUNK_BYTES,
  syncRequestSchema,
  syncResponseSchema,
  toRecord,
  WIRE_VERSION,
  type SyncRequest,
} from "./wire";

export interface SyncDeps {
  store: ClusterStore;
  digests: DigestCache;
  log: Logger;
}

export interface PullResult {
  received: number;
  applied: number;
  rejected: number;
  differingBuckets: number;
}

export function digestRequest(digests: DigestCache): SyncRequest {
  const tables: SyncRequest["tables"] = {};
  for (const [name, digest] of digests.all()) {
    tables[name] = { count: digest.count, buckets: encodeBuckets(digest.buckets) };
  }
  return { v: WIRE_VERSION, op: "digest", tables };
}

async function readFrame(lp: LengthPrefixedStream<Stream>, signal: AbortSignal): Promise<unknown> {
  const bytes = await lp.read({ signal });
  return decodeJson(bytes.subarray());
}

/** Answer one peer's pull on an inbound stream. */
export async function serveSync(stream: Stream, deps: SyncDeps, signal: AbortSignal): Promise<void> {
  const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES });
  try {
    const parsed = syncRequestSchema.safeParse(await readFrame(lp, signal));
    if (!parsed.success || parsed.data.v !== WIRE_VERSION) {
      await lp.write(encodeJson({ op: "error", message: "bad sync request" }), { signal });
      await stream.close({ signal });
      return;
    }
    const theirs = parsed.data.tables;
    let differing = 0;
    let sent = 0;
    let chunk: string[] = [];
    let chunkBytes = 0;
    const flush = async () => {
      if (chunk.length === 0) return;
      const frame = `{"op":"records","records":[${chunk.join(",")}]}`;
      chunk = [];
      chunkBytes = 0;
      await lp.write(new TextEncoder().encode(frame), { signal });
    };
    for (const [table, ours] of deps.digests.all()) {
      const theirBuckets = theirs[table] ? decodeBuckets(theirs[table].buckets) : undefined;
      const buckets = differingBuckets(ours, theirBuckets);
      if (buckets.size === 0) continue;
      differing += buckets.size;
      for (const record of deps.store.records(table)) {
        if (!buckets.has(bucketOf(record.key))) continue;
        const json = JSON.stringify(record);
        if (json.length > MAX_SYNC_RECORD_BYTES) {
          deps.log.warn("cluster: record too large for catch-up", { table, key: record.key, bytes: json.length });
          continue;
        }
        chunk.push(json);
        chunkBytes += json.length;
        sent += 1;
        if (chunkBytes >= SYNC_CHUNK_BYTES) await flush();
      }
    }
    await flush();
    await lp.write(encodeJson({ op: "done", differingBuckets: differing, records: sent }), { signal });
    await stream.close({ signal });
  } catch (error) {
    stream.abort(error as Error);
    throw error;
  }
}

/** Pull what we lack from the peer at the other end of `stream`. */
export async function pullSync(stream: Stream, deps: SyncDeps, signal: AbortSignal): Promise<PullResult> {
  const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES });
  const result: PullResult = { received: 0, applied: 0, rejected: 0, differingBuckets: 0 };
  try {
    await lp.write(encodeJson(digestRequest(deps.digests)), { signal });
    await stream.closeWrite({ signal });
    for (;;) {
      const frame = syncResponseSchema.parse(await readFrame(lp, signal));
      if (frame.op === "error") throw new Error(`peer refused the sync: ${frame.message}`);
      if (frame.op === "done") {
        result.differingBuckets = frame.differingBuckets;
        break;
      }
      for (const parsed of frame.records) {
        const record = toRecord(parsed);
        result.received += 1;
        const outcome = deps.store.applyRemote(record, "sync");
        if (outcome === "applied") result.applied += 1;
        else if (outcome === "rejected") result.rejected += 1;
      }
    }
    await stream.close({ signal });
    return result;
  } catch (error) {
    stream.abort(error as Error);
    throw error;
  }
}
