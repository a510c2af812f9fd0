import type { Table } from "./store";

/** A secondary index over a table: which keys have a given term, kept up to date from its changes. */
export interface TableIndex {
  keys(term: string): ReadonlySet<string>;
}

/**
 * Index a table by a term of each row (an email, a user id, a key prefix), so lookups read a few
 * keys instead of scanning the table. Follows local and remote writes and deletes.
 */
export function indexTable<V>(table: Table<V>, termOf: (key: string, value: V) => string): TableIndex {
  // most terms name one key (one session per user, one user per email): hold that key itself,
  // and a Set only for the terms that have several (a Set costs ~100 bytes, a reference 8)
  const byTerm = new Map<string, string | Set<string>>();
  const add = (term: string, key: string) => {
    const keys = byTerm.get(term);
    if (keys === undefined) byTerm.set(term, key);
    else if (typeof keys === "string") {
      if (keys !== key) byTerm.set(term, new Set([keys, key]));
    } else keys.add(key);
  };
  const remove = (term: string, key: string) => {
    const keys = byTerm.get(term);
    if (keys === undefined) return;
    if (typeof keys === "string") {
      if (keys === key) byTerm.delete(term);
      return;
    }
    keys.delete(key);
    if (keys.size === 1) byTerm.set(term, keys.values().next().value!);
  };
  for (const [key, value] of table.scan()) add(termOf(key, value), key);
  table.onChange(({ key, value, previous }) => {
    if (previous !== undefined) remove(termOf(key, previous), key);
    if (value !== undefined) add(termOf(key, value), key);
  });
  const none: ReadonlySet<string> = new Set();
  return {
    keys: (term) => {
      const keys = byTerm.get(term);
      if (keys === undefined) return none;
      return typeof keys === "string" ? new Set([keys]) : keys;
    },
  };
}
