/**
 * What travels between nodes: topic and protocol names, message schemas and size limits.
 * Everything received is parsed with these schemas before it is used.
 */
import { z } from "zod";
import { MAX_KEY_LENGTH, TABLE_NAME, type RecordEnvelope } from "./store";

export const WIRE_VERSION = 1;
/** largest gossip message accepted (a batch of records, or a membership announcement) */
export const MAX_GOSSIP_BYTES = 64 * 1024;
/** largest frame on the sync and request streams */
export const MAX_FRAME_BYTES = 4 * 1024 * 1024;
/** a sync chunk is flushed once it holds this many bytes */
export const SYNC_CHUNK_BYTES = 256 * 1024;
/** one record larger than this is not carried by the sync (it would not fit a frame) */
export const MAX_SYNC_RECORD_BYTES = 1024 * 1024;

export function names(clusterName: string) {
  return {
    recordsTopic: `/pwdless-gs/${clusterName}/records/1`,
    membersTopic: `/pwdless-gs/${clusterName}/members/1`,
    syncProtocol: `/pwdless-gs/${clusterName}/sync/3.0.0`,
    rpcProtocol: `/pwdless-gs/${clusterName}/rpc/1.0.0`,
    /** this node's own writes, in order, to a peer that confirms what it committed (copy-streams.ts) */
    copiesProtocol: `/pwdless-gs/${clusterName}/copies/1.0.0`,
    /** heartbeats, echoed (liveness.ts) */
    aliveProtocol: `/pwdless-gs/${clusterName}/alive/1.0.0`,
  };
}
export type WireNames = ReturnType<typeof names>;

export const stampSchema = z.object({
  t: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  c: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  n: z.string().min(1).max(128),
});

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
const MAX_JSON_DEPTH = 64;

/** A JSON value no deeper than MAX_JSON_DEPTH; hand-written, as it runs for every record of a snapshot. */
export function isJsonValue(value: unknown, depth = 0): value is Json {
  if (value === null || typeof value === "string" || typeof value === "boolean") return true;
  if (typeof value === "number") return Number.isFinite(value);
  if (depth >= MAX_JSON_DEPTH || typeof value !== "object") return false;
  if (Array.isArray(value)) return value.every((item) => isJsonValue(item, depth + 1));
  if (Object.getPrototypeOf(value) !== Object.prototype) return false;
  for (const key in value) {
    if (!isJsonValue((value as Record<string, unknown>)[key], depth + 1)) return false;
  }
  return true;
}
const jsonSchema = z.custom<Json>((value) => isJsonValue(value), "not a JSON value");

export const recordSchema = z.object({
  table: z.string().regex(TABLE_NAME),
  key: z.string().min(1).max(MAX_KEY_LENGTH),
  /** null is a tombstone */
  value: jsonSchema,
  stamp: stampSchema,
});

/** What a node publishes on the records topic: a batch of its own local writes. */
export const recordBatchSchema = z.object({
  v: z.number().int(),
  records: z.array(recordSchema).min(1).max(1000),
});

const addrsSchema = z.array(z.string().min(1).max(256)).max(32);

/** What a node publishes on the members topic: itself and the peers it is connected to. */
export const announcementSchema = z.object({
  v: z.number().int(),
  peerId: z.string().min(1).max(128),
  addrs: addrsSchema,
  meta: z.record(z.string().max(1024)).refine((m) => Object.keys(m).length <= 32, "too many meta keys"),
  members: z.array(z.object({ peerId: z.string().min(1).max(128), addrs: addrsSchema })).max(256),
});
export type Announcement = z.infer<typeof announcementSchema>;

// --- sync stream ---

export const tableDigestSchema = z.object({
  count: z.number().int().nonnegative(),
  /** base64 of the bucket hashes */
  buckets: z.string().max(64 * 1024),
});

export const syncRequestSchema = z.object({
  v: z.number().int(),
  op: z.literal("digest"),
  tables: z.record(tableDigestSchema),
});
export type SyncRequest = z.infer<typeof syncRequestSchema>;

export const syncResponseSchema = z.discriminatedUnion("op", [
  /** rows of one table: `[key, value, t, c, writer index into nodes]`; checked by `checkSyncRow` */
  z.object({ op: z.literal("rows"), table: z.string(), nodes: z.array(z.string()), rows: z.array(z.unknown()) }),
  z.object({
    op: z.literal("done"),
    differingBuckets: z.number().int().nonnegative(),
    records: z.number().int().nonnegative(),
  }),
  z.object({ op: z.literal("error"), message: z.string() }),
]);
export type SyncResponse = z.infer<typeof syncResponseSchema>;

// --- copy stream ---

/** What a peer answers on a copy stream: "committed everything up to index s", or why it will not hold copies. */
export const copyAnswerSchema = z.discriminatedUnion("op", [
  z.object({ op: z.literal("ack"), s: z.number().int().positive().max(Number.MAX_SAFE_INTEGER) }),
  z.object({ op: z.literal("refused"), reason: z.string().max(256) }),
]);

// --- request/response stream ---

export const rpcRequestSchema = z.object({
  v: z.number().int(),
  method: z.string().min(1).max(128),
  body: z.unknown(),
});

export const rpcResponseSchema = z.union([
  z.object({ ok: z.literal(true), body: z.unknown() }),
  z.object({ ok: z.literal(false), error: z.object({ message: z.string() }) }),
]);

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

export function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

/** Parse bytes as JSON; throws on invalid UTF-8 or JSON. */
export function decodeJson(bytes: Uint8Array): unknown {
  return JSON.parse(decoder.decode(bytes));
}

/**
 * One catch-up row `[key, value, t, c, writer]` of a rows frame, checked by hand: the same rules
 * as `recordSchema`, at a fraction of its cost, since a snapshot carries millions of them.
 * `nodes` are the frame's writer ids (checked once per frame). Undefined when anything is wrong.
 */
export function checkSyncRow(table: string, nodes: string[], raw: unknown): RecordEnvelope | undefined {
  if (!Array.isArray(raw) || raw.length !== 5) return undefined;
  const key: unknown = raw[0];
  const value: unknown = raw[1];
  const t: unknown = raw[2];
  const c: unknown = raw[3];
  const w: unknown = raw[4];
  if (typeof key !== "string" || key.length === 0 || key.length > MAX_KEY_LENGTH) return undefined;
  if (typeof t !== "number" || !Number.isSafeInteger(t) || t < 0) return undefined;
  if (typeof c !== "number" || !Number.isSafeInteger(c) || c < 0) return undefined;
  if (typeof w !== "number" || !Number.isInteger(w) || w < 0 || w >= nodes.length) return undefined;
  if (value === undefined || !isJsonValue(value)) return undefined;
  return { table, key, value, stamp: { t, c, n: nodes[w] } };
}

/** The frame-level part of a rows frame: table name and writer ids. */
export function checkRowsFrame(table: unknown, nodes: unknown): nodes is string[] {
  return (
    typeof table === "string" &&
    TABLE_NAME.test(table) &&
    Array.isArray(nodes) &&
    nodes.every((n) => typeof n === "string" && n.length > 0 && n.length <= 128)
  );
}

export function toRecord(parsed: z.infer<typeof recordSchema>): RecordEnvelope {
  return { table: parsed.table, key: parsed.key, value: parsed.value, stamp: parsed.stamp };
}
