/**
 * One member of the scale benchmark in its own process: a real cluster node holding the app's
 * users, email claims and sessions tables (the app's own stores and schemas), driven over IPC by
 * bench/scale.ts. Reports catch-up readiness, heap, event-loop delay and CPU on request.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { SessionStore } from "#app/lib/session/sessions.server.ts";
import { UserStore } from "#app/lib/accounts/users.server.ts";
import { startCluster } from "#cluster";
import { wireJsonFloor } from "./wire-floor";
import { z } from "zod";

const commandSchema = z.discriminatedUnion("cmd", [
  z.object({ cmd: z.literal("write"), key: z.string() }),
  z.object({ cmd: z.literal("bulk"), count: z.number().int().positive() }),
  z.object({ cmd: z.literal("status") }),
  z.object({ cmd: z.literal("heap") }),
  z.object({ cmd: z.literal("anchor") }),
  z.object({ cmd: z.literal("delay-reset") }),
  z.object({ cmd: z.literal("delay") }),
  z.object({ cmd: z.literal("stop") }),
]);

/** a real browser's user agent: sessions carry one */
const USER_AGENT =
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

const quiet = {
  info() {},
  warn: (msg: string, f?: object) =>
    process.stderr.write(`[worker ${process.pid}] ${msg} ${JSON.stringify(f ?? {})}\n`),
  error: (msg: string, f?: object) =>
    process.stderr.write(`[worker ${process.pid}] ${msg} ${JSON.stringify(f ?? {})}\n`),
};

const send = (m: object) => process.send!(m);
const gc = () => (globalThis as { gc?: () => void }).gc?.();

async function main() {
  const spawnedAt = Number(process.env.BENCH_SPAWNED_AT ?? Date.now());
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
    { tables: { emails: { merge: "first-writer-wins" } } },
  );
  const upAt = Date.now();
  const users = new UserStore(cluster, Date.now);
  const sessions = new SessionStore(cluster, 30, Date.now);
  const bench = cluster.store.table<{ writtenAt: number }>("bench");
  bench.onChange((change) => {
    if (change.origin === "remote" && change.value) {
      send({
        event: "seen",
        key: change.key,
        lagMs: performance.timeOrigin + performance.now() - change.value.writtenAt,
      });
    }
  });
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  gc();
  const baseHeap = process.memoryUsage().heapUsed;
  send({ event: "started", nodeId: cluster.nodeId, startMs: upAt - spawnedAt });
  // readiness as the node sees it, to the millisecond it turns
  const readyPoll = setInterval(() => {
    if (!cluster.isReady()) return;
    clearInterval(readyPoll);
    send({
      event: "ready",
      fromUpMs: Date.now() - upAt,
      fromSpawnMs: Date.now() - spawnedAt,
      sizes: cluster.store.sizes(),
    });
  }, 5);

  const counts = () => {
    const sizes = cluster.store.sizes();
    return { users: sizes.users ?? 0, emails: sizes.emails ?? 0, sessions: sizes.sessions ?? 0 };
  };

  process.on("message", async (raw: unknown) => {
    const m = commandSchema.parse(raw);
    if (m.cmd === "write") {
      bench.set(m.key, { writtenAt: performance.timeOrigin + performance.now() });
    } else if (m.cmd === "bulk") {
      const t0 = Date.now();
      for (let i = 0; i < m.count; i++) {
        const user = users.findOrCreateByEmail(`user${i}@example.com`);
        sessions.createSession(user.id, { method: "email", userAgent: USER_AGENT });
        // keep IPC and the node's timers served while a million users are written
        if (i % 10_000 === 9_999) await new Promise((r) => setImmediate(r));
      }
      send({ event: "bulk-done", ms: Date.now() - t0 });
    } else if (m.cmd === "status") {
      const s = cluster.status();
      send({
        event: "status",
        connected: s.peers.filter((p) => p.connected).length,
        meshSize: s.meshSize,
        ready: s.ready,
        ...counts(),
        catchUps: s.counters.catchUps,
        recordsPulled: s.counters.recordsPulled,
        catchUpFailures: s.counters.catchUpFailures,
        // times a peer was marked down (silent or closed) and back up: a busy peer must not flap
        peersDown: s.liveness?.down ?? 0,
        peersUp: s.liveness?.up ?? 0,
        cpuUs: process.cpuUsage().user + process.cpuUsage().system,
      });
    } else if (m.cmd === "heap") {
      gc();
      gc();
      const mem = process.memoryUsage();
      send({ event: "heap", heapUsed: mem.heapUsed, baseHeap, rss: mem.rss, ...counts() });
    } else if (m.cmd === "anchor") {
      // the floor: the same rows as plain wire JSON ({table,key,value,stamp}), and JSON.parse of it
      const { wireBytes: bytes, parseMs } = wireJsonFloor(cluster.store);
      send({ event: "anchor", wireBytes: bytes, parseMs, users: counts().users });
    } else if (m.cmd === "delay-reset") {
      delay.reset();
      send({ event: "delay-reset" });
    } else if (m.cmd === "delay") {
      send({ event: "delay", maxMs: delay.max / 1e6, p99Ms: delay.percentile(99) / 1e6 });
    } else if (m.cmd === "stop") {
      send({ event: "delay", maxMs: delay.max / 1e6, p99Ms: delay.percentile(99) / 1e6 });
      await cluster.stop();
      process.exit(0);
    }
  });
}

main().catch((error) => {
  process.stderr.write(`scale worker failed: ${(error as Error).stack}\n`);
  process.exit(1);
});
