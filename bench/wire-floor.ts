/**
 * The floor the scale benches set their figures beside: a store's users, email claims and sessions
 * as plain wire JSON ({table, key, value, stamp}), and the time JSON.parse takes to read it back.
 */
import type { ClusterStore } from "#cluster";

export function wireJsonFloor(store: ClusterStore): { wireBytes: number; parseMs: number } {
  let wireBytes = 0;
  let parseMs = 0;
  let chunk: string[] = [];
  const flush = () => {
    const text = `[${chunk.join(",")}]`;
    wireBytes += Buffer.byteLength(text);
    const started = performance.now();
    JSON.parse(text);
    parseMs += performance.now() - started;
    chunk = [];
  };
  for (const table of ["users", "emails", "sessions"]) {
    for (const record of store.records(table)) {
      chunk.push(JSON.stringify(record));
      if (chunk.length === 2_000) flush();
    }
  }
  if (chunk.length > 0) flush();
  return { wireBytes, parseMs };
}
