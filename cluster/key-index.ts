/**
 * A table's key → slot lookup as an open-addressing hash table over typed arrays: ~10 bytes a
 * key where a `Map<string, number>` entry costs ~40, and no key strings at all: a candidate slot
 * is confirmed by comparing the key's bytes in its record (`KeySource.matches`). Linear probing;
 * removal by backward shift, so no tombstones accumulate.
 */

/** FNV-1a over UTF-16 code units: the key's hash here, and (mod 512) its digest bucket. */
export function fnv1a(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i += 1) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** `fnv1a` over code units already in an array (a key read from its bytes). */
export function fnv1aUnits(units: Uint16Array, n: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < n; i += 1) {
    h ^= units[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Tells whether a slot holds the key being looked up (prepared by the caller). */
export interface KeySource {
  matches(slot: number): boolean;
}

const MAX_LOAD = 0.7;

/** Murmur3's finaliser: FNV-1a's low bits are too alike for similar keys to place them by. */
function home(hash: number, mask: number): number {
  let h = hash;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h & mask;
}

export class KeyIndex {
  /** per slot: its key's hash */
  hashes: Uint32Array = new Uint32Array(64);
  /** slot + 1 per position; 0 is empty */
  private table: Int32Array = new Int32Array(128);
  private mask = 127;
  private count = 0;

  constructor(private readonly source: KeySource) {}

  /** The slot whose key hashes to `hash` and matches, or -1. */
  find(hash: number): number {
    const { table, mask, hashes, source } = this;
    for (let i = home(hash, mask); ; i = (i + 1) & mask) {
      const entry = table[i]!;
      if (entry === 0) return -1;
      const slot = entry - 1;
      if (hashes[slot] === hash && source.matches(slot)) return slot;
    }
  }

  /** Index `slot` (not in use, below the capacity given to `reserve`) under `hash`. */
  insert(slot: number, hash: number): void {
    if (this.count + 1 > this.table.length * MAX_LOAD) this.rehash(this.table.length * 2);
    this.hashes[slot] = hash;
    this.place(slot, hash);
    this.count += 1;
  }

  /** Make room for slots below `slots`. */
  reserve(slots: number): void {
    if (slots <= this.hashes.length) return;
    let size = this.hashes.length;
    while (size < slots) size *= 2;
    const next = new Uint32Array(size);
    next.set(this.hashes);
    this.hashes = next;
  }

  /** Size the table for `rows` keys at once (a restore knows how many come): no rehash on the way. */
  expect(rows: number): void {
    let size = this.table.length;
    while (rows > size * MAX_LOAD) size *= 2;
    if (size > this.table.length) this.rehash(size);
  }

  /** What it holds, to hand to another thread (typed arrays: their memory moves with the transfer). */
  export(): { hashes: Uint32Array; table: Int32Array; count: number } {
    return { hashes: this.hashes, table: this.table, count: this.count };
  }

  /** Hold what another thread's index held (see `export`). */
  adopt(state: { hashes: Uint32Array; table: Int32Array; count: number }): void {
    this.hashes = state.hashes;
    this.table = state.table;
    this.mask = state.table.length - 1;
    this.count = state.count;
  }

  remove(slot: number): void {
    const { table, hashes, mask } = this;
    let i = home(hashes[slot]!, mask);
    while (table[i] !== slot + 1) {
      if (table[i] === 0) return;
      i = (i + 1) & mask;
    }
    // backward shift: pull later entries of the run into the hole when their home allows it
    for (let j = (i + 1) & mask; table[j] !== 0; j = (j + 1) & mask) {
      const k = home(hashes[table[j]! - 1]!, mask);
      const between = i <= j ? k > i && k <= j : k > i || k <= j;
      if (!between) {
        table[i] = table[j]!;
        i = j;
      }
    }
    table[i] = 0;
    this.count -= 1;
  }

  private place(slot: number, hash: number): void {
    const { table, mask } = this;
    let i = home(hash, mask);
    while (table[i] !== 0) i = (i + 1) & mask;
    table[i] = slot + 1;
  }

  private rehash(size: number): void {
    const old = this.table;
    this.table = new Int32Array(size);
    this.mask = size - 1;
    for (let i = 0; i < old.length; i += 1) {
      if (old[i] !== 0) this.place(old[i]! - 1, this.hashes[old[i]! - 1]!);
    }
  }
}
