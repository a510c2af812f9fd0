/**
 * npm run bench:scale — figures, not a test, for the cluster at scale (loopback, this machine):
 *  1. the product at 100k and 1M users (bench/scale-servers.ts): real server processes with their
 *     tables files and the app's own stores, rows as email sign-ins write them; a node joins
 *     (spawn → /readyz, event-loop stalls on joiner and holder), a node restarts from its files
 *     (spawn → serving), and what writer, joiner and restored node hold per user, each beside its
 *     anchor from the same run;
 *  2. write on one node → visible on the others at 3 and 5 nodes, and CPU per replicated write,
 *     gossip beside Redis pub/sub (redis-server started here on a free loopback port), between
 *     cluster processes without HTTP (bench/scale-worker.ts): the replication alone.
 * Bounded: fixed counts, every wait has a deadline, and a failure kills every process it started.
 * Prints a table and writes it to bench/results/scale-<time>.md (+ .json).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import path from "node:path";
import { createClient } from "redis";
import { freePort } from "../tests/support/ports";
import { waitFor } from "../tests/support/wait";
import { killAllWorkers, ROOT, spawnWorker, type Msg, type Worker } from "./ipc";
import { killServers, measureServers, serversTable, type ServersRow } from "./scale-servers";

const WRITES = Number(process.env.BENCH_WRITES ?? 300);
const TRANSIENT_WRITES = Number(process.env.BENCH_TRANSIENT_WRITES ?? 30);
const WRITE_GAP_MS = 10;
const USERS = (process.env.BENCH_SCALE_USERS ?? "100000,1000000")
  .split(",")
  .map(Number)
  .filter((n) => n > 0);
const NODE_SIZES = (process.env.BENCH_SCALE_NODES ?? "3,5")
  .split(",")
  .map(Number)
  .filter((n) => n > 0);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
};

function clusterEnv(): Record<string, string> {
  return {
    BENCH_CLUSTER: `scale-${randomBytes(4).toString("hex")}`,
    BENCH_KEY: randomBytes(32).toString("hex"),
    BENCH_REGISTRY: mkdtempSync(path.join(tmpdir(), "pwdless-bench-reg-")),
  };
}

type Status = Msg & {
  connected: number;
  meshSize: number;
  ready: boolean;
  users: number;
  emails: number;
  sessions: number;
  recordsPulled: number;
  catchUpFailures: number;
  cpuUs: number;
};

// --- Redis ---

const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"]).stdout?.toString().trim() || 100);

class RedisServer {
  private constructor(
    private readonly proc: ChildProcess,
    readonly url: string,
  ) {}

  static async start(): Promise<RedisServer | undefined> {
    if (spawnSync("redis-server", ["--version"]).status !== 0) return undefined;
    const port = await freePort();
    const proc = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "yes"],
      { stdio: "ignore" },
    );
    const url = `redis://127.0.0.1:${port}`;
    await waitFor(
      "redis-server to answer",
      async () => {
        const client = createClient({ url, socket: { reconnectStrategy: false } });
        client.on("error", () => {});
        await client.connect();
        await client.ping();
        await client.quit();
        return true;
      },
      10_000,
      50,
    );
    return new RedisServer(proc, url);
  }

  /** CPU the server process has used, µs (from /proc). */
  cpuUs(): number {
    const fields = readFileSync(`/proc/${this.proc.pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return ((Number(fields[11]) + Number(fields[12])) / CLK_TCK) * 1e6;
  }

  stop(): void {
    this.proc.kill("SIGTERM");
  }
}

// --- 1. write → visible ---

interface LatencyRow {
  transport: "gossip" | "redis";
  nodes: number;
  transient: { writes: number; p50: number; p99: number; max: number };
  writes: number;
  arrivals: number;
  p50: number;
  p99: number;
  max: number;
  cpuPerWriteUs: number;
  idleCpuUs: number;
}

async function cpuOf(workers: Worker[], redis?: RedisServer): Promise<number> {
  const all = await Promise.all(workers.map((w) => w.ask<Status>("status")));
  return all.reduce((sum, s) => sum + s.cpuUs, 0) + (redis ? redis.cpuUs() : 0);
}

async function writeRound(workers: Worker[], count: number, prefix: string, lags: number[]) {
  const expected = lags.length + count * (workers.length - 1);
  for (let i = 0; i < count; i++) {
    workers[i % workers.length]!.send({ cmd: "write", key: `${prefix}${i}` });
    await sleep(WRITE_GAP_MS);
  }
  await waitFor(`${expected} arrivals`, () => lags.length >= expected, 30_000, 20);
}

async function replication(transport: "gossip" | "redis", size: number, redis?: RedisServer): Promise<LatencyRow> {
  const env = transport === "gossip" ? clusterEnv() : { BENCH_REDIS_URL: redis!.url };
  const file = transport === "gossip" ? "bench/scale-worker.ts" : "bench/redis-worker.ts";
  const workers = Array.from({ length: size }, () => spawnWorker(file, env));
  try {
    await Promise.all(workers.map((w) => w.next("started", 60_000, true)));
    if (transport === "gossip") {
      await waitFor(
        "the bench cluster to connect",
        async () =>
          (await Promise.all(workers.map((w) => w.ask<Status>("status")))).every((s) => s.connected >= size - 1),
        30_000,
        20,
      );
    }
    let lags: number[] = [];
    for (const w of workers) w.listener = (m) => m.event === "seen" && lags.push(m.lagMs as number);
    // the start-up transient: writes right after the connections opened, before the mesh settled
    await writeRound(workers, TRANSIENT_WRITES, "t", lags);
    const transient = { writes: TRANSIENT_WRITES, p50: pct(lags, 50), p99: pct(lags, 99), max: Math.max(...lags) };
    if (transport === "gossip") {
      await waitFor(
        "every node's mesh to hold every other",
        async () =>
          (await Promise.all(workers.map((w) => w.ask<Status>("status")))).every((s) => s.meshSize >= size - 1),
        30_000,
        50,
      );
    }
    // a few heartbeats, then the idle CPU over as long as the writes take, to subtract
    await sleep(2_000);
    const window = WRITES * WRITE_GAP_MS;
    const idle0 = await cpuOf(workers, redis);
    const idleStart = performance.now();
    await sleep(window);
    const idle1 = await cpuOf(workers, redis);
    const idleMs = performance.now() - idleStart;
    lags = [];
    const start = performance.now();
    await writeRound(workers, WRITES, "w", lags);
    const busy = (await cpuOf(workers, redis)) - idle1;
    const busyMs = performance.now() - start;
    const idleCpuUs = ((idle1 - idle0) / idleMs) * busyMs;
    return {
      transport,
      nodes: size,
      transient,
      writes: WRITES,
      arrivals: lags.length,
      p50: pct(lags, 50),
      p99: pct(lags, 99),
      max: Math.max(...lags),
      cpuPerWriteUs: Math.max(0, busy - idleCpuUs) / WRITES,
      idleCpuUs,
    };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
}

// --- report ---

function report(
  started: Date,
  servers: ServersRow[],
  latency: LatencyRow[],
  redisNote: string,
  load: number[],
  failure: string | undefined,
): string {
  const f = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : "—");
  const redisOf = (nodes: number) => latency.find((r) => r.transport === "redis" && r.nodes === nodes);
  const ratio = (a: number, b: number | undefined) => (b && b > 0 ? `${(a / b).toFixed(2)}×` : "—");
  return [
    `# Scale benchmark, ${started.toISOString()}`,
    "",
    `Machine: ${cpus().length} cores, Node ${process.version}, loopback only. ${redisNote}`,
    "",
    ...(failure ? [`**The run stopped early: ${failure}.** The tables hold what was measured before.`, ""] : []),
    `Load average (1 min) at the start and the end: ${load.map((l) => l.toFixed(1)).join(" / ")} — the machine is shared; ratios are taken inside this run.`,
    "",
    "## The product at N users: real servers, tables files on, rows as email sign-ins write them",
    "",
    "A user is a users row with its `{provider, subject, linkedAt}` identity, its email claim and a session, written by the app's own stores. Writer: the process that wrote them (a cluster node with the app's stores and its tables files, no HTTP). Restored: `node build/node/index.js` started on the writer's DATA_DIR. Joiner: the same server started on an empty DATA_DIR, pulling from the restored one. Heap per user: JS heap plus external memory (array buffers, where the rows live, including those a worker thread handed over at start), after a full GC, less the same server's with no users.",
    "",
    ...serversTable(servers),
    `## Write on one node → visible on the others (${WRITES} writes, one every ${WRITE_GAP_MS} ms, after the mesh settled)`,
    "",
    "Between cluster processes without HTTP (the replication alone).",
    "",
    "| transport | nodes | arrivals | p50 ms | p99 ms | max ms | p99 vs Redis | CPU per write, µs (all processes, idle subtracted) | CPU vs Redis |",
    "|---|---|---|---|---|---|---|---|---|",
    ...latency.map((r) => {
      const anchor = r.transport === "gossip" ? redisOf(r.nodes) : undefined;
      return `| ${r.transport} | ${r.nodes} | ${r.arrivals} | ${f(r.p50)} | ${f(r.p99)} | ${f(r.max)} | ${anchor ? ratio(r.p99, anchor.p99) : "anchor"} | ${f(r.cpuPerWriteUs)} | ${anchor ? ratio(r.cpuPerWriteUs, anchor.cpuPerWriteUs) : "anchor"} |`;
    }),
    "",
    `Start-up transient (the first ${TRANSIENT_WRITES} writes, issued as soon as the connections opened):`,
    "",
    "| transport | nodes | p50 ms | p99 ms | max ms |",
    "|---|---|---|---|---|",
    ...latency.map(
      (r) => `| ${r.transport} | ${r.nodes} | ${f(r.transient.p50)} | ${f(r.transient.p99)} | ${f(r.transient.max)} |`,
    ),
    "",
  ].join("\n");
}

async function main() {
  const started = new Date();
  const loadAtStart = loadavg()[0]!;
  console.log(
    `bench:scale on ${started.toISOString()} (servers at ${USERS.join("/")} users; replication at ${NODE_SIZES.join("/")} nodes)`,
  );
  const latency: LatencyRow[] = [];
  const servers: ServersRow[] = [];
  let redisNote = "";
  const file = path.join(ROOT, "bench/results", `scale-${started.toISOString().slice(0, 19).replace(/[:T]/g, "-")}.md`);
  // written after every stage, so a stage that fails keeps the figures of those before it
  const save = (failure?: string) => {
    const table = report(started, servers, latency, redisNote, [loadAtStart, loadavg()[0]!], failure);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, table);
    writeFileSync(file.replace(/\.md$/, ".json"), JSON.stringify({ started, servers, latency, failure }, null, 2));
    return table;
  };
  try {
    for (const users of USERS) {
      console.log(`servers at ${users} users:`);
      servers.push(await measureServers(users, (line) => console.log(line)));
      save();
    }
    if (NODE_SIZES.length > 0) {
      const redis = await RedisServer.start();
      redisNote = redis
        ? "Redis: redis-server started by the bench on a free loopback port (no persistence)."
        : "Redis: redis-server is not installed here, so the Redis anchor is missing.";
      try {
        for (const size of NODE_SIZES) {
          if (redis) {
            latency.push(await replication("redis", size, redis));
            console.log(`  redis pub/sub, ${size} nodes: done`);
          }
          latency.push(await replication("gossip", size));
          console.log(`  gossip, ${size} nodes: done`);
          save();
        }
      } finally {
        redis?.stop();
      }
    }
  } catch (error) {
    save((error as Error).message);
    throw error;
  }
  console.log(`\n${save()}`);
  console.log(`written to ${path.relative(ROOT, file)}`);
}

main()
  .catch((error) => {
    console.error(`bench failed: ${(error as Error).message}`);
    killAllWorkers();
    killServers();
    process.exitCode = 1;
  })
  .finally(() => setTimeout(() => process.exit(), 500).unref());
