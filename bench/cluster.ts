/**
 * npm run bench:cluster — figures, not a test. On this machine's loopback:
 *  1. write → visible on every other node (cluster library, 3 and 5 processes), p50/p99;
 *  2. catch-up of a late joiner for 10k and 100k users;
 *  3. sign-out on one node → its token refused on another (real server processes over HTTP).
 * Bounded: a fixed number of writes and rounds, each wait with a deadline. Prints a table and
 * writes it to bench/results/.
 */
import { fork, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { clusterEnv, startClusterNodes, waitForMesh } from "../tests/support/cluster";
import { accessToken, browse, signIn } from "../tests/support/flows";
import { stopAllNodes } from "../tests/support/node";
import { waitFor } from "../tests/support/wait";
import { writeResults } from "./results";

const ROOT = path.resolve(import.meta.dirname, "..");
const WRITES = Number(process.env.BENCH_WRITES ?? 200);
const SIGNOUT_ROUNDS = Number(process.env.BENCH_SIGNOUT_ROUNDS ?? 20);
const CATCHUP_SIZES = (process.env.BENCH_CATCHUP ?? "10000,100000").split(",").map(Number);

type Msg = { event: string; [k: string]: unknown };

class Worker {
  readonly messages: Msg[] = [];
  private waiters: Array<{ test: (m: Msg) => boolean; resolve: (m: Msg) => void }> = [];
  readonly spawnedAt = Date.now();
  constructor(readonly proc: ChildProcess) {
    proc.on("message", (m: Msg) => {
      this.messages.push(m);
      for (const w of [...this.waiters]) {
        if (w.test(m)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(m);
        }
      }
      if (this.listener) this.listener(m);
    });
  }
  listener: ((m: Msg) => void) | undefined;
  next(event: string, timeoutMs = 120_000): Promise<Msg> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${event}`)), timeoutMs);
      this.waiters.push({
        test: (m) => m.event === event,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      });
    });
  }
  send(m: object) {
    this.proc.send(m);
  }
  async status() {
    this.send({ cmd: "status" });
    return (await this.next("status")) as { connected: number; ready: boolean; users: number } & Msg;
  }
  async stop() {
    this.send({ cmd: "stop" });
    await new Promise((r) => this.proc.once("exit", r));
  }
}

/** every worker still running: killed when a wait fails, so none outlives the bench */
const running = new Set<ChildProcess>();

function spawnWorker(env: Record<string, string>): Worker {
  const proc = fork(path.join(ROOT, "bench/worker.ts"), [], {
    execArgv: ["--import", "tsx"],
    env: { ...process.env, ...env },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  running.add(proc);
  proc.once("exit", () => running.delete(proc));
  return new Worker(proc);
}

function benchEnv() {
  return {
    BENCH_CLUSTER: `bench-${randomBytes(4).toString("hex")}`,
    BENCH_KEY: randomBytes(32).toString("hex"),
    BENCH_REGISTRY: mkdtempSync(path.join(tmpdir(), "pwdless-bench-reg-")),
  };
}

const pct = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};

async function connected(workers: Worker[]) {
  await waitFor(
    "the bench cluster to connect",
    async () => (await Promise.all(workers.map((w) => w.status()))).every((s) => s.connected >= workers.length - 1),
    30_000,
    100,
  );
}

async function replicationLatency(size: number) {
  const env = benchEnv();
  const workers = Array.from({ length: size }, () => spawnWorker(env));
  await Promise.all(workers.map((w) => w.next("started")));
  await connected(workers);
  const lags: number[] = [];
  for (const w of workers) w.listener = (m) => m.event === "seen" && lags.push(m.lagMs as number);
  const expected = WRITES * (size - 1);
  for (let i = 0; i < WRITES; i++) {
    workers[i % size]!.send({ cmd: "write", key: `k${i}` });
    await new Promise((r) => setTimeout(r, 10));
  }
  await waitFor(`all ${expected} arrivals`, () => lags.length >= expected, 30_000);
  await Promise.all(workers.map((w) => w.stop()));
  return {
    nodes: size,
    writes: WRITES,
    observations: lags.length,
    p50: pct(lags, 50),
    p99: pct(lags, 99),
    max: Math.max(...lags),
  };
}

async function catchUp(users: number) {
  const env = benchEnv();
  const first = [spawnWorker(env), spawnWorker(env)];
  await Promise.all(first.map((w) => w.next("started")));
  await connected(first);
  first[0]!.send({ cmd: "bulk", count: users });
  const bulk = await first[0]!.next("bulk-done");
  const t0 = Date.now();
  await waitFor(
    `${users} users on the second node`,
    async () => (await first[1]!.status()).users >= users,
    180_000,
    200,
  );
  const gossipMs = Date.now() - t0 + (bulk.ms as number);

  const late = spawnWorker(env);
  const started = await late.next("started");
  const nodeUpAt = Date.now();
  await waitFor(
    `the late joiner to hold ${users} users`,
    async () => (await late.status()).users >= users,
    180_000,
    50,
  );
  const doneAt = Date.now();
  await Promise.all([...first, late].map((w) => w.stop()));
  return {
    users,
    gossipAllMs: gossipMs,
    catchUpMs: doneAt - nodeUpAt,
    fromSpawnMs: doneAt - late.spawnedAt,
    nodeStartMs: started.startMs as number,
  };
}

async function signOutPropagation(size: number) {
  const nodes = await startClusterNodes(size, clusterEnv());
  await waitForMesh(nodes);
  const first = nodes[0]!;
  const last = nodes[size - 1]!;
  const times: number[] = [];
  for (let round = 0; round < SIGNOUT_ROUNDS; round++) {
    const jar = await signIn(first, `bench${round}@example.com`);
    const token = await accessToken(first, jar);
    await waitFor(
      "the session on the last node",
      async () => (await last.fetch("/api/me", { headers: { Authorization: `Bearer ${token}` } })).status === 200,
    );
    const t0 = performance.now();
    const out = await browse(last, jar, "/logout", { method: "POST" });
    if (out.status !== 302) throw new Error(`logout answered ${out.status}`);
    await waitFor(
      "the revocation on the first node",
      async () => (await first.fetch("/api/me", { headers: { Authorization: `Bearer ${token}` } })).status === 401,
      10_000,
      1,
    );
    times.push(performance.now() - t0);
  }
  await stopAllNodes();
  return { nodes: size, rounds: SIGNOUT_ROUNDS, p50: pct(times, 50), p99: pct(times, 99), max: Math.max(...times) };
}

async function main() {
  const started = new Date();
  console.log(
    `bench:cluster on ${started.toISOString()} (${WRITES} writes per size, catch-up ${CATCHUP_SIZES.join("/")}, ${SIGNOUT_ROUNDS} sign-outs)\n`,
  );
  const latency = [];
  for (const size of [3, 5]) {
    latency.push(await replicationLatency(size));
    console.log(`  replication, ${size} nodes: done`);
  }
  const catchups = [];
  for (const users of CATCHUP_SIZES) {
    catchups.push(await catchUp(users));
    console.log(`  catch-up, ${users} users: done`);
  }
  const signouts = [];
  for (const size of [3, 5]) {
    signouts.push(await signOutPropagation(size));
    console.log(`  sign-out propagation, ${size} nodes: done`);
  }
  const f = (n: number) => n.toFixed(1);
  const lines = [
    `# Cluster benchmark, ${started.toISOString()}`,
    "",
    `Machine: ${(await import("node:os")).cpus().length} cores, Node ${process.version}, loopback only.`,
    "",
    "## Write on one node → visible on another (cluster library, separate processes)",
    "",
    "| nodes | writes | arrivals | p50 ms | p99 ms | max ms |",
    "|---|---|---|---|---|---|",
    ...latency.map((r) => `| ${r.nodes} | ${r.writes} | ${r.observations} | ${f(r.p50)} | ${f(r.p99)} | ${f(r.max)} |`),
    "",
    "## Late joiner catch-up (users written on one node; a new process joins)",
    "",
    "| users | all replicated by gossip, ms | late joiner: node up → all rows, ms | from spawn, ms | ms per 1k users |",
    "|---|---|---|---|---|",
    ...catchups.map(
      (r) =>
        `| ${r.users} | ${r.gossipAllMs} | ${r.catchUpMs} | ${r.fromSpawnMs} | ${f((r.catchUpMs / r.users) * 1000)} |`,
    ),
    "",
    "## Sign-out on the last node → the token refused on the first (real servers, HTTP)",
    "",
    "| nodes | rounds | p50 ms | p99 ms | max ms |",
    "|---|---|---|---|---|",
    ...signouts.map((r) => `| ${r.nodes} | ${r.rounds} | ${f(r.p50)} | ${f(r.p99)} | ${f(r.max)} |`),
    "",
  ];
  const table = lines.join("\n");
  console.log(`\n${table}`);
  writeResults("cluster", started, table, { started, latency, catchups, signouts });
}

main()
  .catch(async (error) => {
    console.error(`bench failed: ${(error as Error).message}`);
    for (const proc of running) proc.kill("SIGKILL");
    await stopAllNodes();
    process.exitCode = 1;
  })
  .finally(() => setTimeout(() => process.exit(), 500).unref());
