/**
 * Run with --expose-gc (tests/unit/memory-shape.test.ts): N users written through the app's
 * stores on a node with its tables files; a second store catches them up from it (the sync
 * code, in this process), and a third restores them from the writer's files (the start's path:
 * a worker thread, adopted). Prints what each holds per user (JS heap + external memory, after GC).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { ClusterStore, FilePersistence, type StartClusterOptions } from "#cluster";
import { UserStore } from "#app/lib/accounts/users.server.ts";
import { SessionStore } from "#app/lib/session/sessions.server.ts";
import { applyFrames, digestRequest, syncFrames } from "../../cluster/sync";

const users = Number(process.argv[2] ?? 50_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --expose-gc");
const held = () => {
  gc();
  gc();
  const m = process.memoryUsage();
  // external, not arrayBuffers: array buffers a worker thread handed over count only there
  return m.heapUsed + m.external;
};
const quiet = { info() {}, warn() {}, error() {} };
// as server/index.ts declares them
const tables: StartClusterOptions["tables"] = {
  emails: { merge: "first-writer-wins" },
  users: { indexes: ["email"] },
  sessions: { indexes: ["uid"] },
};

/** A node's store with the app's stores over it (what a server holds for its tables). */
function node(id: string) {
  const store = new ClusterStore({ nodeId: id });
  for (const [name, options] of Object.entries(tables!)) store.table(name, options);
  const port = { store, nodeId: id, durable: async () => {}, handle() {}, atomics: undefined } as never;
  return { store, port };
}

async function main() {
  const dir = mkdtempSync(path.join(tmpdir(), "pwdless-memory-"));
  try {
    const writer = node("12D3KooWWriterWriterWriterWriterWriterWriterWriter");
    const persistence = new FilePersistence({ dir, clusterName: "memory" });
    await persistence.start({ store: writer.store, log: quiet, tombstoneTtlMs: 7 * 86_400_000 });
    const accounts = new UserStore(writer.port, Date.now);
    const sessions = new SessionStore(writer.port, 30, Date.now);
    for (let i = 0; i < users; i++) {
      const email = `user${i}@example.com`;
      const user = accounts.findOrCreateByEmail(email, { provider: "email", subject: email });
      sessions.createSession(user.id, { method: "email", userAgent: "Mozilla/5.0 (X11; Linux x86_64) Chrome/131" });
    }
    await persistence.durable();
    await persistence.stop();

    let before = held();
    const joined = node("12D3KooWJoinerJoinerJoinerJoinerJoinerJoinerJoiner");
    new UserStore(joined.port, Date.now);
    new SessionStore(joined.port, 30, Date.now);
    const result = { received: 0, applied: 0, rejected: 0, differingBuckets: 0 };
    async function* frames() {
      for await (const f of syncFrames(writer.store, digestRequest(joined.store), { log: quiet })) yield Buffer.from(f);
    }
    await applyFrames(frames(), joined.store, result);
    const joinedBytes = held() - before;

    before = held();
    const restored = node("12D3KooWWriterWriterWriterWriterWriterWriterWriter");
    const again = new FilePersistence({ dir, clusterName: "memory" });
    await again.start({ store: restored.store, log: quiet, tombstoneTtlMs: 7 * 86_400_000 });
    new UserStore(restored.port, Date.now);
    new SessionStore(restored.port, 30, Date.now);
    const restoredBytes = held() - before;
    await again.stop();
    process.stdout.write(
      `${JSON.stringify({
        users,
        applied: result.applied,
        restoredRows: restored.store.sizes(),
        joinedPerUser: joinedBytes / users,
        restoredPerUser: restoredBytes / users,
      })}\n`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).stack}\n`);
  process.exit(1);
});
