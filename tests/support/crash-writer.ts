/**
 * A process that writes to a store with its tables files as fast as it can, and tells its parent
 * (over IPC) each write that durable() acknowledged; snapshots come often (a small threshold), so
 * a SIGKILL lands in commits, in snapshots and in log rotations. For tests/integration/tables-crash.test.ts.
 * Usage: tsx tests/support/crash-writer.ts <dir> <round>
 */
import { ClusterStore, FilePersistence } from "#cluster";

const [dir, round] = process.argv.slice(2);
const log = {
  info() {},
  warn() {},
  error: (m: string, f?: object) => process.stderr.write(`${m} ${JSON.stringify(f)}\n`),
};

async function main() {
  const store = new ClusterStore({ nodeId: `writer-${round}` });
  const persistence = new FilePersistence({ dir: dir!, clusterName: "crash", snapshotAfterBytes: 256 * 1024 });
  await persistence.start({ store, log, tombstoneTtlMs: 7 * 86_400_000 });
  const rows = store.table<{ round: string; n: number; pad: string }>("rows");
  process.send!({ ready: true });
  for (let n = 0; ; n += 1) {
    const batch: string[] = [];
    for (let i = 0; i < 50; i += 1) {
      // keys are rewritten as well as added: a restored key must hold its acknowledged version or a later one
      const key = `k${(n * 50 + i) % 4_000}`;
      rows.set(key, { round: round!, n: n * 50 + i, pad: "x".repeat(60) });
      batch.push(key);
    }
    await persistence.durable();
    process.send!({ acked: batch.map((key) => [key, rows.get(key)!.n]) });
  }
}

main().catch((error) => {
  process.stderr.write(`crash writer failed: ${(error as Error).stack}\n`);
  process.exit(1);
});
