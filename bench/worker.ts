/**
 * One benchmark cluster member in its own process: a real cluster node (no HTTP), driven by the
 * parent over IPC. Reports when remote writes to the "bench" table arrive.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { startCluster } from "../cluster/index";

type Command = { cmd: "write"; key: string } | { cmd: "bulk"; count: number } | { cmd: "status" } | { cmd: "stop" };

const quiet = {
  info() {},
  warn() {},
  error: (msg: string, f?: object) => process.stderr.write(`${msg} ${JSON.stringify(f ?? {})}\n`),
};

async function main() {
  const started = Date.now();
  const cluster = await startCluster(
    {
      clusterName: process.env.BENCH_CLUSTER!,
      clusterKey: new Uint8Array(Buffer.from(process.env.BENCH_KEY!, "hex")),
      dataDir: mkdtempSync(path.join(tmpdir(), "pwdless-bench-")),
      host: "127.0.0.1",
      port: 0,
      peers: [],
      discovery: "local",
      registryDir: process.env.BENCH_REGISTRY,
    },
    quiet,
  );
  const bench = cluster.store.table<{ writtenAt: number }>("bench");
  const users = cluster.store.table<{ id: string; email: string; createdAt: number }>("users");
  bench.onChange((change) => {
    if (change.origin === "remote" && change.value) {
      process.send!({ event: "seen", key: change.key, lagMs: Date.now() - change.value.writtenAt });
    }
  });
  const send = (m: object) => process.send!(m);
  send({ event: "started", nodeId: cluster.nodeId, startMs: Date.now() - started });

  process.on("message", async (m: Command) => {
    if (m.cmd === "write") {
      bench.set(m.key, { writtenAt: Date.now() });
    } else if (m.cmd === "bulk") {
      const t0 = Date.now();
      for (let i = 0; i < m.count; i++) {
        const id = `00000000-0000-4000-8000-${i.toString(16).padStart(12, "0")}`;
        users.set(id, { id, email: `user${i}@example.com`, createdAt: t0 });
      }
      send({ event: "bulk-done", ms: Date.now() - t0 });
    } else if (m.cmd === "status") {
      const s = cluster.status();
      send({
        event: "status",
        connected: s.peers.filter((p) => p.connected).length,
        ready: s.ready,
        users: users.size,
      });
    } else if (m.cmd === "stop") {
      await cluster.stop();
      process.exit(0);
    }
  });
}

main().catch((error) => {
  process.stderr.write(`bench worker failed: ${(error as Error).stack}\n`);
  process.exit(1);
});
