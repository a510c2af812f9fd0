/**
 * npm run bench:scale — figures, not a test, for the cluster at scale (loopback, this machine):
 *  1. write on one node → visible on the others at 3 and 5 nodes, and CPU per replicated write,
 *     gossip beside Redis pub/sub (redis-server started here on a free loopback port) in the same
 *     run; the start-up transient (writes before the mesh settled) reported apart;
 *  2. a node joining a cluster of 100k and 1M users (user + email claim + session each, the app's
 *     own stores and schemas): spawn → ready, the event loop's longest stall meanwhile, heap per
 *     user on the writer and on the nodes that received the rows by catch-up, beside the anchors
 *     (the rows as wire JSON, and JSON.parse of it, measured in the same run).
 * Bounded: fixed counts, every wait has a deadline, and a failure kills every worker it started.
 * Prints a table and writes it to bench/results/scale-<time>.md (+ .json).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import path from "node:path";
import { createClient } from "redis";
import { freePort } from "../tests/support/ports";
import { waitFor } from "../tests/support/wait";
import { killAllWorkers, ROOT, spawnWorker, type Msg, type Worker } from "./ipc";

const WRITES = Number(process.env.BENCH_WRITES ?? 300);
const TRANSIENT_WRITES = Number(process.env.BENCH_TRANSIENT_WRITES ?? 30);
const WRITE_GAP_MS = 10;
const USERS = (process.env.BENCH_SCALE_USERS ?? "100000,1000000").split(",").map(Number);
const NODE_SIZES = [3, 5];
const BIG_HEAP = ["--expose-gc", "--max-old-space-size=8192"];
/** the third joiner (two serving peers) runs up to this many users; default always */
const THIRD_MAX_USERS = Number(process.env.BENCH_THIRD_JOINER_MAX_USERS ?? Infinity);
/** how long a joiner may take to be ready: 5 min per 100k users, at least 5 min */
const readyDeadline = (users: number) => Math.max(300_000, (users / 100_000) * 300_000);

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

// --- 2. catch-up and bytes per user ---

interface JoinFigures {
  readyFromSpawnMs: number;
  readyFromUpMs: number;
  startMs: number;
  completeAtReady: boolean;
  recordsPulled: number;
  catchUpFailures: number;
  joinerMaxStallMs: number;
  servingMaxStallMs: number;
  heapPerUser: number;
}

interface CatchUpRow {
  users: number;
  bulkMs: number;
  writerHeapPerUser: number;
  wireBytesPerUser: number;
  jsonParseMs: number;
  second: JoinFigures;
  third?: JoinFigures;
}

async function heapPerUser(worker: Worker, users: number): Promise<number> {
  const heap = await worker.ask<Msg & { heapUsed: number; baseHeap: number }>("heap", "heap", 120_000);
  return (heap.heapUsed - heap.baseHeap) / users;
}

async function join(
  env: Record<string, string>,
  users: number,
  serving: Worker[],
): Promise<{ worker: Worker; figures: JoinFigures }> {
  for (const w of serving) await w.ask("delay-reset");
  const worker = spawnWorker("bench/scale-worker.ts", env, BIG_HEAP);
  const started = await worker.next("started", 60_000, true);
  await worker.ask("delay-reset");
  const ready = await worker.next("ready", readyDeadline(users), true);
  const sizes = ready.sizes as Record<string, number>;
  const completeAtReady = sizes.users === users && sizes.emails === users && sizes.sessions === users;
  await waitFor(
    `the joiner to hold ${users} users, claims and sessions`,
    async () => {
      const s = await worker.ask<Status>("status");
      return s.users === users && s.emails === users && s.sessions === users;
    },
    readyDeadline(users),
    200,
  );
  const status = await worker.ask<Status>("status");
  const joinerDelay = await worker.ask<Msg & { maxMs: number }>("delay");
  const servingDelays = await Promise.all(serving.map((w) => w.ask<Msg & { maxMs: number }>("delay")));
  return {
    worker,
    figures: {
      readyFromSpawnMs: ready.fromSpawnMs as number,
      readyFromUpMs: ready.fromUpMs as number,
      startMs: started.startMs as number,
      completeAtReady,
      recordsPulled: status.recordsPulled,
      catchUpFailures: status.catchUpFailures,
      joinerMaxStallMs: joinerDelay.maxMs,
      servingMaxStallMs: Math.max(...servingDelays.map((d) => d.maxMs)),
      heapPerUser: await heapPerUser(worker, users),
    },
  };
}

async function catchUp(users: number): Promise<CatchUpRow> {
  const env = clusterEnv();
  const writer = spawnWorker("bench/scale-worker.ts", env, BIG_HEAP);
  const workers = [writer];
  try {
    await writer.next("started", 60_000, true);
    writer.send({ cmd: "bulk", count: users });
    const bulk = await writer.next("bulk-done", 30 * 60_000);
    const writerHeapPerUser = await heapPerUser(writer, users);
    const anchor = await writer.ask<Msg & { wireBytes: number; parseMs: number }>("anchor", "anchor", 600_000);
    // a second node joins the writer alone; a third joins both (and pulls its snapshot from one)
    const second = await join(env, users, [writer]);
    workers.push(second.worker);
    const third = users <= THIRD_MAX_USERS ? await join(env, users, [writer, second.worker]) : undefined;
    if (third) workers.push(third.worker);
    return {
      users,
      bulkMs: bulk.ms as number,
      writerHeapPerUser,
      wireBytesPerUser: anchor.wireBytes / users,
      jsonParseMs: anchor.parseMs,
      second: second.figures,
      third: third?.figures,
    };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    rmSync(env.BENCH_REGISTRY!, { recursive: true, force: true });
  }
}

// --- report ---

function report(
  started: Date,
  latency: LatencyRow[],
  catchups: CatchUpRow[],
  redisNote: string,
  load: number[],
  failure: string | undefined,
): string {
  const f = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : "—");
  const k = (n: number) => (n / 1000).toFixed(2);
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
    `## Write on one node → visible on the others (${WRITES} writes, one every ${WRITE_GAP_MS} ms, after the mesh settled)`,
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
    "## A node joins a cluster of N users (user + email claim + session each)",
    "",
    "Second node: joins the writer alone. Third node: joins the writer and the second node, and pulls its snapshot from one of them.",
    "",
    "| users | joiner | spawn → ready, s | node up → ready, s | all rows at ready | rows pulled | failed pulls | longest event-loop stall, joiner / serving, ms | heap per user on it, B |",
    "|---|---|---|---|---|---|---|---|---|",
    ...catchups.flatMap((r) =>
      (["second", "third"] as const).flatMap((which) => {
        const j = r[which];
        if (!j) return [];
        return `| ${r.users} | ${which} | ${k(j.readyFromSpawnMs)} | ${k(j.readyFromUpMs)} | ${j.completeAtReady ? "yes" : "no"} | ${j.recordsPulled} | ${j.catchUpFailures} | ${f(j.joinerMaxStallMs)} / ${f(j.servingMaxStallMs)} | ${j.heapPerUser.toFixed(0)} |`;
      }),
    ),
    "",
    "Anchors, same run, on the writer:",
    "",
    "| users | writing them (app stores), s | heap per user on the writer, B | wire JSON per user, B | JSON.parse of that JSON, s |",
    "|---|---|---|---|---|",
    ...catchups.map(
      (r) =>
        `| ${r.users} | ${k(r.bulkMs)} | ${r.writerHeapPerUser.toFixed(0)} | ${r.wireBytesPerUser.toFixed(0)} | ${k(r.jsonParseMs)} |`,
    ),
    "",
  ].join("\n");
}

async function main() {
  const started = new Date();
  const loadAtStart = loadavg()[0]!;
  console.log(`bench:scale on ${started.toISOString()} (${WRITES} writes per size, catch-up ${USERS.join("/")})`);
  const latency: LatencyRow[] = [];
  const catchups: CatchUpRow[] = [];
  let redisNote = "";
  const file = path.join(ROOT, "bench/results", `scale-${started.toISOString().slice(0, 19).replace(/[:T]/g, "-")}.md`);
  // written after every stage, so a stage that fails keeps the figures of those before it
  const save = (failure?: string) => {
    const table = report(started, latency, catchups, redisNote, [loadAtStart, loadavg()[0]!], failure);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, table);
    writeFileSync(file.replace(/\.md$/, ".json"), JSON.stringify({ started, latency, catchups, failure }, null, 2));
    return table;
  };
  try {
    const redis = await RedisServer.start();
    redisNote = redis
      ? "Redis: redis-server started by the bench on a free loopback port (no persistence)."
      : "Redis: redis-server is not installed here, so the Redis anchor is missing.";
    console.log(`  ${redisNote}`);
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
    for (const users of USERS) {
      catchups.push(await catchUp(users));
      console.log(`  catch-up, ${users} users: done`);
      save();
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
    process.exitCode = 1;
  })
  .finally(() => setTimeout(() => process.exit(), 500).unref());
