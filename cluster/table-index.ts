/**
 * A secondary index over a table: which keys have a given term (a user id, an address hash),
 * kept up to date from the table's changes. It holds no strings: per row the hash of its term,
 * in an open-addressing table of slots (~12 bytes a row, where a Map of key strings cost ~150 at
 * a million sessions); a lookup confirms each candidate by reading its row.
 */
import { SlotMultimap, termHash } from "./slot-multimap";
import { TABLE_INTERNALS, type Table, type TableInternals } from "./store";

export interface TableIndex {
  keys(term: string): ReadonlySet<string>;
}

/**
 * Index a table by a term of each row (an email, a user id, a key prefix), so lookups read a few
 * keys instead of scanning the table. Follows local and remote writes and deletes. The term is a
 * function of the row, or the name of a top-level string field: then the store keeps the index
 * itself from the rows' bytes, without decoding them, and a field declared in the table's options
 * (`indexes`) is built while the rows are restored or caught up, not all at once when asked for.
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
  let index: SlotMultimap;
  if (typeof term === "string") index = rows.fieldIndex(term);
  else {
    index = new SlotMultimap();
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
