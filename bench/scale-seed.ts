/**
 * The writer of bench:scale, in its own process: a cluster node on a DATA_DIR with its tables
 * files, writing N users as an email sign-in writes them, through the app's own stores (a user
 * with its `{provider, subject, linkedAt}` identity, the email claim, a session), each commit
 * awaited as a request would. Reports the heap per user it holds (JS heap and external memory,
 * after GC), the anchors (the rows as wire JSON, and JSON.parse of it), then stops, leaving the files
 * for the real servers the bench starts on them.
 * Usage (by bench/scale.ts): tsx --expose-gc bench/scale-seed.ts <dataDir> <clusterName> <users>
 */
import { UserStore } from "#app/lib/accounts/users.server.ts";
import { SessionStore } from "#app/lib/session/sessions.server.ts";
import { filePersistence, startCluster } from "#cluster";
import { wireJsonFloor } from "./wire-floor";

/** a real browser's user agent: sessions carry one */
export const USER_AGENT =
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

const quiet = {
  info() {},
  warn: (msg: string, f?: object) => process.stderr.write(`[seed] ${msg} ${JSON.stringify(f ?? {})}\n`),
  error: (msg: string, f?: object) => process.stderr.write(`[seed] ${msg} ${JSON.stringify(f ?? {})}\n`),
};

const gc = () => (globalThis as { gc?: () => void }).gc?.();
const held = () => {
  gc();
  gc();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, external: m.external };
};

async function main() {
  const [dataDir, clusterName, count] = process.argv.slice(2);
  const users = Number(count);
  if (!dataDir || !clusterName || !Number.isInteger(users) || users <= 0)
    throw new Error("usage: <dataDir> <clusterName> <users>");
  const persistence = filePersistence({ dir: dataDir, clusterName });
  const cluster = await startCluster(
    {
      clusterName,
      clusterKey: new Uint8Array(32).fill(7),
      dataDir,
      host: "127.0.0.1",
      port: 0,
      peers: [],
      discovery: "none",
    },
    quiet,
    // as server/index.ts declares them
    {
      tables: {
        emails: { merge: "first-writer-wins" },
        users: { indexes: ["email"] },
        sessions: { indexes: ["uid"] },
        passkeys: { indexes: ["uid"] },
      },
      persistence,
    },
  );
  const accounts = new UserStore(cluster, Date.now);
  const sessions = new SessionStore(cluster, 30, Date.now);
  const before = held();
  const t0 = performance.now();
  for (let i = 0; i < users; i++) {
    const email = `user${i}@example.com`;
    // what finishSignIn writes for an email sign-in: the user (with its identity) and a session
    const user = accounts.findOrCreateByEmail(email, { provider: "email", subject: email });
    sessions.createSession(user.id, { method: "email", userAgent: USER_AGENT });
    if (i % 2_000 === 1_999) await cluster.durable();
  }
  await cluster.durable();
  const writeMs = performance.now() - t0;
  // a node that wrote its users over days has its files in their steady state: a snapshot and a
  // short log (snapshots are not begun while rows pour in as they do here)
  await persistence.maintain();
  // let the arena compaction of the users' first versions (before their identity) run
  await new Promise((r) => setTimeout(r, 2_000));
  const after = held();
  // the floor: the same rows as plain wire JSON ({table,key,value,stamp}), and JSON.parse of it
  const { wireBytes, parseMs } = wireJsonFloor(cluster.store);
  const sizes = cluster.store.sizes();
  const fileBytes = persistence.bytes();
  await cluster.stop();
  process.stdout.write(
    `${JSON.stringify({
      users,
      rows: (sizes.users ?? 0) + (sizes.emails ?? 0) + (sizes.sessions ?? 0),
      writeMs,
      heapPerUser: (after.heap - before.heap) / users,
      externalPerUser: (after.external - before.external) / users,
      wireBytesPerUser: wireBytes / users,
      parseMs,
      fileBytes,
    })}\n`,
  );
}

main().catch((error) => {
  process.stderr.write(`seed failed: ${(error as Error).stack}\n`);
  process.exit(1);
});
