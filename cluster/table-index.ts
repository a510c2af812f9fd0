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
  const byTerm = new Map<string, Set<string>>();
  const add = (term: string, key: string) => {
    const keys = byTerm.get(term) ?? new Set<string>();
    keys.add(key);
    byTerm.set(term, keys);
  };
  const remove = (term: string, key: string) => {
    const keys = byTerm.get(term);
    if (!keys) return;
    keys.delete(key);
    if (keys.size === 0) byTerm.delete(term);
  };
  for (const [key, value] of table.scan()) add(termOf(key, value), key);
  table.onChange(({ key, value, previous }) => {
    if (previous !== undefined) remove(termOf(key, previous), key);
    if (value !== undefined) add(termOf(key, value), key);
  });
  const none: ReadonlySet<string> = new Set();
  return { keys: (term) => byTerm.get(term) ?? none };
}
