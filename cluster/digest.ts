/**
 * A table's digest: its rows spread over fixed buckets by key, each bucket the XOR of a hash of
 * (key, stamp) over its rows. Two nodes holding the same versions have equal buckets; a bucket
 * that differs names the few rows worth sending. The store keeps each table's digest up to date
 * as rows change (XOR in, XOR out); `computeTableDigest` recomputes one from scratch.
 */
import type { ClusterStore } from "./store";

export const BUCKETS = 512;
export const WORDS_PER_BUCKET = 2;

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

/** The two 32-bit words of the last `versionHash` (no allocation per row). */
export const hashOut = new Uint32Array(2);

/** A writer id's own hash (FNV-1a), computed once per writer: rows mix it in instead of the id. */
export function nodeHash(n: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < n.length; i += 1) {
    h ^= n.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * A 64-bit hash of one version (key, t, c, writer), written to `hashOut`. Not cryptographic:
 * peers are key holders, and a digest only decides which rows to send (cyrb53-style mixing,
 * ~0.1 µs a row, where SHA-1 through node:crypto cost ~1 µs). `node` is `nodeHash(n)`.
 */
export function versionHash(key: string, t: number, c: number, node: number): void {
  const n = key.length;
  if (units.length < n) units = new Uint16Array(n);
  for (let i = 0; i < n; i += 1) units[i] = key.charCodeAt(i);
  versionHashUnits(units, n, t, c, node);
}

let units = new Uint16Array(512);

/** `versionHash` over the key's UTF-16 code units in an array (a key read from its bytes). */
export function versionHashUnits(key: Uint16Array, length: number, t: number, c: number, node: number): void {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < length; i += 1) {
    const x = key[i]!;
    h1 = Math.imul(h1 ^ x, 2654435761);
    h2 = Math.imul(h2 ^ x, 1597334677);
  }
  // a separator outside UTF-16, both halves of t and c, then the writer
  h1 = Math.imul(h1 ^ 0x10000, 2654435761);
  h2 = Math.imul(h2 ^ 0x10000, 1597334677);
  const tl = t >>> 0;
  const th = Math.floor(t / 0x100000000);
  const cl = c >>> 0;
  const ch = Math.floor(c / 0x100000000);
  h1 = Math.imul(h1 ^ tl, 2654435761);
  h2 = Math.imul(h2 ^ tl, 1597334677);
  h1 = Math.imul(h1 ^ th, 2654435761);
  h2 = Math.imul(h2 ^ th, 1597334677);
  h1 = Math.imul(h1 ^ cl, 2654435761);
  h2 = Math.imul(h2 ^ cl, 1597334677);
  h1 = Math.imul(h1 ^ ch, 2654435761);
  h2 = Math.imul(h2 ^ ch, 1597334677);
  h1 = Math.imul(h1 ^ node, 2654435761);
  h2 = Math.imul(h2 ^ node, 1597334677);
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  hashOut[0] = h1;
  hashOut[1] = h2;
}

/** The digest of one table computed from all its rows: what the store's running digest must equal. */
export function computeTableDigest(store: ClusterStore, table: string): TableDigest {
  const buckets = new Uint32Array(BUCKETS * WORDS_PER_BUCKET);
  let count = 0;
  for (const record of store.records(table)) {
    const b = bucketOf(record.key) * WORDS_PER_BUCKET;
    versionHash(record.key, record.stamp.t, record.stamp.c, nodeHash(record.stamp.n));
    buckets[b] ^= hashOut[0];
    buckets[b + 1] ^= hashOut[1];
    count += 1;
  }
  return { count, buckets };
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
