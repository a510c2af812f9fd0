/**
 * A secondary index over a table: which keys have a given term (a user id, an address hash),
 * kept up to date from the table's changes. It holds no strings: per row the hash of its term,
 * in an open-addressing table of slots (~12 bytes a row, where a Map of key strings cost ~150 at
 * a million sessions); a lookup confirms each candidate by reading its row.
 */
import { TABLE_INTERNALS, type Table, type TableInternals } from "./store";

export interface TableIndex {
  keys(term: string): ReadonlySet<string>;
}

const MAX_LOAD = 0.5;

function termHash(term: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < term.length; i += 1) {
    h ^= term.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return finish(h);
}

/** `termHash` of a term given as code units (read from a row's bytes). */
function termHashUnits(units: Uint16Array, n: number): number {
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
class SlotMultimap {
  /** slot + 1 per position; 0 is empty */
  private table = new Int32Array(64);
  private mask = 63;
  private count = 0;
  /** per slot: the hash it is filed under (valid while the slot is in the table) */
  private hashOf = new Uint32Array(64);

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

const scratch = new Uint16Array(1024);

/**
 * Index a table by a term of each row (an email, a user id, a key prefix), so lookups read a few
 * keys instead of scanning the table. Follows local and remote writes and deletes. The term is a
 * function of the row, or the name of a top-level string field: then the index is built from the
 * rows' bytes, without decoding them (a million sessions by user id in a fraction of a second).
 */
export function indexTable<V>(table: Table<V>, term: string | ((key: string, value: V) => string)): TableIndex {
  const rows = (table as unknown as { [TABLE_INTERNALS]?: TableInternals<V> })[TABLE_INTERNALS];
  if (!rows) throw new TypeError("indexTable needs a table of a ClusterStore");
  const termOf =
    typeof term === "string"
      ? (_key: string, value: V) => {
          const v = (value as Record<string, unknown>)[term];
          return typeof v === "string" ? v : undefined;
        }
      : term;
  const index = new SlotMultimap();
  if (typeof term === "string") {
    // a field: filed from the rows' bytes, kept up to date by slot (no row is decoded)
    const file = (slot: number) => {
      const n = rows.fieldUnits(slot, term, scratch);
      if (n >= 0) {
        index.add(slot, termHashUnits(scratch, n));
        return;
      }
      const key = rows.keyAt(slot);
      const value = rows.valueAt(slot, key);
      const t = value === undefined ? undefined : termOf(key, value);
      if (t !== undefined) index.add(slot, termHash(t));
    };
    rows.forEachLiveSlot(file);
    rows.onSlot((slot, live) => {
      index.remove(slot);
      if (live) file(slot);
    });
  } else {
    rows.forEachLive((slot, key, value) => index.add(slot, termHash(term(key, value))));
    table.onChange(({ key, value, previous }) => {
      const slot = rows.slotOf(key);
      if (slot < 0) return;
      if (previous !== undefined) index.remove(slot);
      if (value !== undefined) index.add(slot, termHash(term(key, value)));
    });
  }
  return {
    keys: (wanted) => {
      const out = new Set<string>();
      for (const slot of index.candidates(termHash(wanted))) {
        const key = rows.keyAt(slot);
        const value = rows.valueAt(slot, key);
        if (value !== undefined && termOf(key, value) === wanted) out.add(key);
      }
      return out;
    },
  };
}
