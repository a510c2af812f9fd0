/**
 * term hash → slots, as a multimap over typed arrays: what an index over a table holds (~12
 * bytes a row, and no strings). Linear probing, backward-shift removal; a lookup's candidates
 * are confirmed by reading their rows.
 */

const MAX_LOAD = 0.5;

export function termHash(term: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < term.length; i += 1) {
    h ^= term.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return finish(h);
}

/** `termHash` of a term given as code units (read from a row's bytes). */
export function termHashUnits(units: Uint16Array, n: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < n; i += 1) {
    h ^= units[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return finish(h);
}

/** Murmur3's finaliser spreads FNV-1a's similar low bits. */
function finish(hash: number): number {
  let h = hash;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** term hash → slots, as a multimap over typed arrays (linear probing, backward-shift removal) */
export class SlotMultimap {
  /** slot + 1 per position; 0 is empty */
  private table: Int32Array = new Int32Array(64);
  private mask = 63;
  private count = 0;
  /** per slot: the hash it is filed under (valid while the slot is in the table) */
  private hashOf: Uint32Array = new Uint32Array(64);

  /** What it holds, to hand to another thread. */
  export(): { table: Int32Array; count: number; hashOf: Uint32Array } {
    return { table: this.table, count: this.count, hashOf: this.hashOf };
  }

  static adopt(state: { table: Int32Array; count: number; hashOf: Uint32Array }): SlotMultimap {
    const map = new SlotMultimap();
    map.table = state.table;
    map.mask = state.table.length - 1;
    map.count = state.count;
    map.hashOf = state.hashOf;
    return map;
  }

  /** Make room for `rows` entries at once (a restore or a catch-up says how many come). */
  expect(rows: number): void {
    let size = this.table.length;
    while (rows > size * MAX_LOAD) size *= 2;
    if (size > this.table.length) this.rehash(size);
    if (rows > this.hashOf.length) {
      const next = new Uint32Array(rows);
      next.set(this.hashOf);
      this.hashOf = next;
    }
  }

  add(slot: number, hash: number): void {
    if (slot >= this.hashOf.length) {
      let size = this.hashOf.length;
      while (size <= slot) size *= 2;
      const next = new Uint32Array(size);
      next.set(this.hashOf);
      this.hashOf = next;
    }
    if (this.count + 1 > this.table.length * MAX_LOAD) this.rehash(this.table.length * 2);
    this.hashOf[slot] = hash;
    this.place(slot, hash);
    this.count += 1;
  }

  remove(slot: number): void {
    const { table, mask } = this;
    let i = this.hashOf[slot]! & mask;
    while (table[i] !== slot + 1) {
      if (table[i] === 0) return;
      i = (i + 1) & mask;
    }
    for (let j = (i + 1) & mask; table[j] !== 0; j = (j + 1) & mask) {
      const k = this.hashOf[table[j]! - 1]! & mask;
      const between = i <= j ? k > i && k <= j : k > i || k <= j;
      if (!between) {
        table[i] = table[j]!;
        i = j;
      }
    }
    table[i] = 0;
    this.count -= 1;
  }

  *candidates(hash: number): Generator<number> {
    const { table, mask } = this;
    for (let i = hash & mask; table[i] !== 0; i = (i + 1) & mask) {
      const slot = table[i]! - 1;
      if (this.hashOf[slot] === hash) yield slot;
    }
  }

  private place(slot: number, hash: number): void {
    const { table, mask } = this;
    let i = hash & mask;
    while (table[i] !== 0) i = (i + 1) & mask;
    table[i] = slot + 1;
  }

  private rehash(size: number): void {
    const old = this.table;
    this.table = new Int32Array(size);
    this.mask = size - 1;
    for (let i = 0; i < old.length; i += 1) if (old[i] !== 0) this.place(old[i]! - 1, this.hashOf[old[i]! - 1]!);
  }
}
