/**
 * A table's digest: its rows spread over fixed buckets by key, each bucket the XOR of a hash of
 * (key, stamp) over its rows. Two nodes holding the same versions have equal buckets; a bucket
 * that differs names the few rows worth sending.
 */
import { hash } from "node:crypto";
import type { ClusterStore } from "./store";

export const BUCKETS = 512;
const WORDS_PER_BUCKET = 2;

export interface TableDigest {
  count: number;
  buckets: Uint32Array;
}

/** FNV-1a over the key's UTF-16 code units: cheap, and only spreads keys over buckets. */
export function bucketOf(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i += 1) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % BUCKETS;
}

function versionHash(key: string, t: number, c: number, n: string): Buffer {
  return hash("sha1", `${key}\u0000${t}\u0000${c}\u0000${n}`, "buffer");
}

export function computeTableDigest(store: ClusterStore, table: string): TableDigest {
  const buckets = new Uint32Array(BUCKETS * WORDS_PER_BUCKET);
  let count = 0;
  for (const record of store.records(table)) {
    const b = bucketOf(record.key) * WORDS_PER_BUCKET;
    const h = versionHash(record.key, record.stamp.t, record.stamp.c, record.stamp.n);
    buckets[b] ^= h.readUInt32LE(0);
    buckets[b + 1] ^= h.readUInt32LE(4);
    count += 1;
  }
  return { count, buckets };
}

/** Digests of every table, recomputed only when the store changed since the last call. */
export class DigestCache {
  private revision = -1;
  private digests = new Map<string, TableDigest>();

  constructor(private readonly store: ClusterStore) {}

  all(): Map<string, TableDigest> {
    if (this.revision !== this.store.revision) {
      const next = new Map<string, TableDigest>();
      for (const table of this.store.tableNames()) next.set(table, computeTableDigest(this.store, table));
      this.digests = next;
      this.revision = this.store.revision;
    }
    return this.digests;
  }
}

export function encodeBuckets(buckets: Uint32Array): string {
  const bytes = Buffer.alloc(buckets.length * 4);
  for (let i = 0; i < buckets.length; i += 1) bytes.writeUInt32LE(buckets[i], i * 4);
  return bytes.toString("base64");
}

/** Decode a peer's buckets; undefined when the size is wrong. */
export function decodeBuckets(text: string): Uint32Array | undefined {
  const bytes = Buffer.from(text, "base64");
  if (bytes.byteLength !== BUCKETS * WORDS_PER_BUCKET * 4) return undefined;
  const out = new Uint32Array(BUCKETS * WORDS_PER_BUCKET);
  for (let i = 0; i < out.length; i += 1) out[i] = bytes.readUInt32LE(i * 4);
  return out;
}

/** Buckets in which `ours` differs from `theirs` (all of ours that hold rows when they have none). */
export function differingBuckets(ours: TableDigest, theirs: Uint32Array | undefined): Set<number> {
  const out = new Set<number>();
  for (let b = 0; b < BUCKETS; b += 1) {
    const i = b * WORDS_PER_BUCKET;
    const a0 = ours.buckets[i];
    const a1 = ours.buckets[i + 1];
    const b0 = theirs ? theirs[i] : 0;
    const b1 = theirs ? theirs[i + 1] : 0;
    if (a0 !== b0 || a1 !== b1) out.add(b);
  }
  return out;
}
