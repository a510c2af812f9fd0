/**
 * npm run bench:redis — figures, not a test: Redis mode beside gossip mode, measured in the same run.
 *  1. write on one node → visible on another (cluster library, two nodes in this process, so one
 *     clock times both ends), p50/p99; anchor: gossip mode, and a bare Redis PING round trip;
 *  2. sign-ins per second on one node of a two-node cluster (real server processes over HTTP,
 *     email link end to end), Redis mode beside gossip mode;
 *  3. the cost of WAIT: write → acknowledged on one node (cluster library), and the same sign-ins
 *     with the p99 of their confirmation (the request that waits for the write), on a Redis with a
 *     replica, without WAIT and with WAIT 1, beside a Redis without replica (anchor), in
 *     alternated rounds;
 *  4. a Sentinel failover under sign-in load: time from SIGKILL of the primary to the next
 *     acknowledged sign-in, and acknowledged sign-ins missing afterwards (expected: 0).
 * Bounded: a fixed number of writes and sign-ins, each wait with a deadline. Prints a table and
 * writes it to bench/results/.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import os, { tmpdir } from "node:os";
import path from "node:path";
import { createClient } from "redis";
import { startCluster, type Cluster, type ClusterConfig, type Logger } from "../cluster";
import { clusterEnv, startClusterNodes, waitForMesh } from "../tests/support/cluster";
import { CookieJar } from "../tests/support/cookie-jar";
import { browse, pathOf, requestLink, signIn } from "../tests/support/flows";
import { startNode, stopAllNodes, type NodeProcess } from "../tests/support/node";
import {
  redisClusterEnv,
  startRedisSentinelSet,
  startRedisServer,
  stopRedisServers,
  waitForRedisCluster,
  type RedisStatusJson,
} from "../tests/support/redis";
import { waitFor } from "../tests/support/wait";
import { writeResults } from "./results";

const WRITES = Number(process.env.BENCH_WRITES ?? 300);
const SIGNINS = Number(process.env.BENCH_SIGNINS ?? 40);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);

const quiet: Logger = { info() {}, warn() {}, error() {} };

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const ms = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : "—");

function baseConfig(name: string, dir: string): ClusterConfig {
  return {
    clusterName: name,
    clusterKey: randomBytes(32),
    dataDir: dir,
    host: "127.0.0.1",
    port: 0,
    peers: [],
    discovery: "none",
  };
}

/** Writes on A, one at a time, each timed until B's table has it. */
async function writeToVisible(a: Cluster, b: Cluster): Promise<number[]> {
  const seen = new Map<string, number>();
  b.store.table<number>("bench").onChange((change) => {
    if (change.origin === "remote") seen.set(change.key, performance.now());
  });
  const lags: number[] = [];
  const table = a.store.table<number>("bench");
  for (let i = 0; i < WRITES; i++) {
    const key = `k${i}`;
    const started = performance.now();
    table.set(key, i);
    await waitFor(`write ${key} on B`, () => seen.has(key), 10_000, 0);
    lags.push(seen.get(key)! - started);
  }
  return lags.sort((x, y) => x - y);
}

async function gossipPair(): Promise<[Cluster, Cluster, () => Promise<void>]> {
  const name = `bench-${randomBytes(3).toString("hex")}`;
  const key = randomBytes(32);
  const dirs = [mkdtempSync(path.join(tmpdir(), "bench-g-")), mkdtempSync(path.join(tmpdir(), "bench-g-"))];
  const timings = { redialTickMs: 100, redialMinBackoffMs: 100, syncIntervalMs: 60_000 };
  const a = await startCluster({ ...baseConfig(name, dirs[0]!), clusterKey: key }, quiet, { timings });
  const b = await startCluster(
    { ...baseConfig(name, dirs[1]!), clusterKey: key, peers: a.status().addresses.slice(0, 1) },
    quiet,
    { timings },
  );
  await waitFor("the gossip pair to mesh", () => a.status().meshSize > 0 && b.status().meshSize > 0, 30_000);
  return [a, b, async () => cleanup([a, b], dirs)];
}

async function redisPair(url: string): Promise<[Cluster, Cluster, () => Promise<void>]> {
  const name = `bench-${randomBytes(3).toString("hex")}`;
  const dirs = [mkdtempSync(path.join(tmpdir(), "bench-r-")), mkdtempSync(path.join(tmpdir(), "bench-r-"))];
  const redis = { url, timeoutMs: 2_000 };
  const a = await startCluster({ ...baseConfig(name, dirs[0]!), redis }, quiet);
  const b = await startCluster({ ...baseConfig(name, dirs[1]!), redis }, quiet);
  return [a, b, async () => cleanup([a, b], dirs)];
}

/** Writes on one node, one at a time, each timed until durable() resolves (Redis acknowledged it). */
async function writeToAcknowledged(url: string, waitReplicas: "auto" | 0, replicas: number): Promise<number[]> {
  const dir = mkdtempSync(path.join(tmpdir(), "bench-w-"));
  const node = await startCluster(
    { ...baseConfig(`bench-${randomBytes(3).toString("hex")}`, dir), redis: { url, timeoutMs: 2_000, waitReplicas } },
    quiet,
  );
  try {
    await waitFor("the WAIT count", () => node.status().redis?.waitReplicas.effective === replicas, 10_000);
    const table = node.store.table<number>("bench");
    const times: number[] = [];
    for (let i = 0; i < WRITES; i++) {
      const started = performance.now();
      table.set(`k${i}`, i);
      await node.durable();
      times.push(performance.now() - started);
    }
    return times.sort((x, y) => x - y);
  } finally {
    await cleanup([node], [dir]);
  }
}

async function cleanup(nodes: Cluster[], dirs: string[]): Promise<void> {
  await Promise.all(nodes.map((n) => n.stop()));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}

async function pingRoundTrips(url: string): Promise<number[]> {
  const client = createClient({ url });
  await client.connect();
  const times: number[] = [];
  for (let i = 0; i < WRITES; i++) {
    const started = performance.now();
    await client.ping();
    times.push(performance.now() - started);
  }
  await client.close();
  return times.sort((x, y) => x - y);
}

interface SignInFigures {
  rate: number;
  /** the confirmation POST: the request that creates the session and waits for its write */
  confirmMs: number[];
}

/** One email-link sign-in; returns the jar and how long the confirmation took. */
async function timedSignIn(node: NodeProcess, email: string): Promise<{ jar: CookieJar; confirmMs: number }> {
  const jar = new CookieJar();
  const link = await requestLink(node, jar, email);
  const started = performance.now();
  const res = await browse(node, jar, pathOf(link), { method: "POST" });
  const confirmMs = performance.now() - started;
  if (res.status !== 302) throw new Error(`confirming the link answered ${res.status}`);
  return { jar, confirmMs };
}

/** Sign-ins per second on the first node, CONCURRENCY at a time, every one a new address. */
async function signInsPerSecond(nodes: NodeProcess[], label: string): Promise<SignInFigures> {
  const node = nodes[0]!;
  await signIn(node, `warm-${label}@example.com`);
  let next = 0;
  const confirmMs: number[] = [];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < SIGNINS) {
        const i = next++;
        confirmMs.push((await timedSignIn(node, `bench-${label}-${i}@example.com`)).confirmMs);
      }
    }),
  );
  return { rate: SIGNINS / ((performance.now() - started) / 1000), confirmMs: confirmMs.sort((x, y) => x - y) };
}

async function status(node: NodeProcess): Promise<RedisStatusJson> {
  return (await (await node.fetch("/cluster.json")).json()) as RedisStatusJson;
}

/** Two server processes on one Redis setting; `replicas`: the WAIT count they must settle on. */
async function redisSignIns(env: Record<string, string>, label: string, replicas: number): Promise<SignInFigures> {
  const nodes = [await startNode({ env }), await startNode({ env })];
  await waitForRedisCluster(nodes);
  await waitFor(`${label}: writes to wait for ${replicas} replica(s)`, async () =>
    (await Promise.all(nodes.map(status))).every((s) => s.redis?.waitReplicas.effective === replicas),
  );
  const figures = await signInsPerSecond(nodes, label);
  await stopAllNodes();
  return figures;
}

interface FailoverFigures {
  acknowledged: number;
  refused: number;
  resumedAfterMs: number;
  missing: number;
}

/** SIGKILL the Sentinel primary while CONCURRENCY sign-ins run on two nodes; then count what a new node finds. */
async function failover(): Promise<FailoverFigures> {
  const set = await startRedisSentinelSet();
  const env = { ...redisClusterEnv(set.env()), ...LIMITS };
  const nodes = [await startNode({ env }), await startNode({ env })];
  await waitForRedisCluster(nodes);
  const done: Array<{ jar: CookieJar; at: number }> = [];
  let refused = 0;
  let n = 0;
  let stop = false;
  const workers = Array.from({ length: CONCURRENCY }, async () => {
    while (!stop) {
      const i = (n += 1);
      try {
        const { jar } = await timedSignIn(nodes[i % 2]!, `failover-${i}@example.com`);
        done.push({ jar, at: Date.now() });
      } catch {
        refused += 1;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  });
  await waitFor("sign-ins before the kill", () => done.length >= SIGNINS / 2, 120_000);
  const killedAt = Date.now();
  await set.primary.stop("SIGKILL");
  const first = await waitFor("a sign-in after the failover", () => done.find((d) => d.at > killedAt), 120_000, 20);
  await waitFor(
    "sign-ins after the failover",
    () => done.filter((d) => d.at > killedAt).length >= SIGNINS / 2,
    120_000,
  );
  stop = true;
  await Promise.all(workers);
  const fresh = await startNode({ env });
  await waitForRedisCluster([...nodes, fresh], 60_000);
  let missing = 0;
  for (const { jar } of done) if ((await browse(fresh, jar.clone(), "/account")).status !== 200) missing += 1;
  await stopAllNodes();
  return { acknowledged: done.length, refused, resumedAfterMs: first.at - killedAt, missing };
}

const LIMITS = { RATE_LIMIT_REQUESTS_PER_IP: "100000", RATE_LIMIT_OPENINGS_PER_IP: "100000" };

async function main() {
  const redisServer = await startRedisServer();
  try {
    console.log(`bench:redis — ${WRITES} writes, ${SIGNINS} sign-ins (${CONCURRENCY} at a time); loopback only`);
    const ping = await pingRoundTrips(redisServer.url);
    const [ga, gb, gStop] = await gossipPair();
    const gossip = await writeToVisible(ga, gb);
    await gStop();
    const [ra, rb, rStop] = await redisPair(redisServer.url);
    const redis = await writeToVisible(ra, rb);
    await rStop();
    console.log("  write → visible: done");

    const gossipNodes = await startClusterNodes(2, { ...clusterEnv(), ...LIMITS });
    await waitForMesh(gossipNodes);
    const gossipRate = await signInsPerSecond(gossipNodes, "gossip");
    await stopAllNodes();
    const redisRate = await redisSignIns({ ...redisClusterEnv(redisServer), ...LIMITS }, "redis", 0);
    console.log("  sign-ins: done");

    // the cost of WAIT: a primary with a replica, without and with WAIT 1
    const primary = await startRedisServer();
    await startRedisServer({ args: ["--replicaof", "127.0.0.1", String(primary.port)] });
    await waitFor(
      "the replica in sync",
      async () => {
        const client = createClient({ url: primary.url });
        await client.connect();
        try {
          return /slave0:.*state=online/.test(await client.info("replication"));
        } finally {
          await client.close();
        }
      },
      30_000,
    );
    // alternated in rounds, so a change in the machine's load hits every setting alike
    const acks: Array<{ alone: number[]; noWait: number[]; wait: number[] }> = [];
    for (let round = 1; round <= ROUNDS; round += 1) {
      acks.push({
        alone: await writeToAcknowledged(redisServer.url, "auto", 0),
        noWait: await writeToAcknowledged(primary.url, 0, 0),
        wait: await writeToAcknowledged(primary.url, "auto", 1),
      });
    }
    const rounds: Array<{ alone: SignInFigures; noWait: SignInFigures; wait: SignInFigures }> = [];
    for (let round = 1; round <= ROUNDS; round += 1) {
      const alone = await redisSignIns({ ...redisClusterEnv(redisServer), ...LIMITS }, `alone-${round}`, 0);
      const noWait = await redisSignIns(
        { ...redisClusterEnv(primary), ...LIMITS, REDIS_WAIT_REPLICAS: "0" },
        `replica-no-wait-${round}`,
        0,
      );
      const wait = await redisSignIns({ ...redisClusterEnv(primary), ...LIMITS }, `replica-wait-${round}`, 1);
      rounds.push({ alone, noWait, wait });
    }
    console.log("  WAIT: done");
    const failed = await failover();
    console.log("  failover: done");
    const load = os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(" / ");

    const at = new Date();
    const signRow = (name: string, f: SignInFigures) =>
      `| ${name} | ${SIGNINS} | ${CONCURRENCY} | ${f.rate.toFixed(1)} | ${ms(percentile(f.confirmMs, 50))} / ${ms(percentile(f.confirmMs, 99))} |`;
    const row = (name: string, xs: number[]) =>
      `| ${name} | ${xs.length} | ${ms(percentile(xs, 50))} | ${ms(percentile(xs, 99))} | ${ms(xs[xs.length - 1]!)} |`;
    const md = [
      `# Redis-mode benchmark, ${at.toISOString()}`,
      "",
      `Machine: ${os.cpus().length} cores, Node ${process.version}, loopback only; redis-server with appendonly yes, appendfsync always.`,
      "",
      "## Write on one node → visible on another (cluster library, two nodes in one process)",
      "",
      "| transport | writes | p50 ms | p99 ms | max ms |",
      "|---|---|---|---|---|",
      row("gossip (anchor)", gossip),
      row("Redis", redis),
      row("bare Redis PING round trip (anchor)", ping),
      "",
      "## Sign-ins per second on one node of two (real servers, HTTP, email link end to end)",
      "",
      "| transport | sign-ins | concurrency | sign-ins/s | confirmation p50 / p99 ms |",
      "|---|---|---|---|---|",
      signRow("gossip (anchor)", gossipRate),
      signRow("Redis", redisRate),
      "",
      "## The cost of WAIT (same sign-ins; Redis with AOF, appendfsync always)",
      "",
      "Write on one node → acknowledged (`durable()` resolved), one at a time, cluster library:",
      "",
      "| round | Redis | writes | p50 ms | p99 ms | max ms |",
      "|---|---|---|---|---|---|",
      ...acks.flatMap((r, i) => [
        `| ${i + 1} ${row("no replica (anchor)", r.alone)}`,
        `| ${i + 1} ${row("primary + replica, REDIS_WAIT_REPLICAS=0 (no WAIT)", r.noWait)}`,
        `| ${i + 1} ${row("primary + replica, WAIT 1 (auto)", r.wait)}`,
      ]),
      "",
      "Sign-ins on one node of two (real servers, HTTP):",
      "",
      "| round | Redis | sign-ins | concurrency | sign-ins/s | confirmation p50 / p99 ms |",
      "|---|---|---|---|---|---|",
      ...rounds.flatMap((r, i) => [
        `| ${i + 1} ${signRow("no replica (anchor)", r.alone)}`,
        `| ${i + 1} ${signRow("primary + replica, REDIS_WAIT_REPLICAS=0 (no WAIT)", r.noWait)}`,
        `| ${i + 1} ${signRow("primary + replica, WAIT 1 (auto)", r.wait)}`,
      ]),
      "",
      "## Sentinel failover under sign-in load (primary + replica + 3 sentinels, down-after 1 s)",
      "",
      "| acknowledged sign-ins | refused during the failover | sign-ins resumed after SIGKILL | acknowledged and missing afterwards |",
      "|---|---|---|---|",
      `| ${failed.acknowledged} | ${failed.refused} | ${failed.resumedAfterMs} ms | ${failed.missing} |`,
      "",
      `Load average (1/5/15 min) at the end: ${load}.`,
      "",
    ].join("\n");
    console.log(`\n${md}`);
    writeResults("redis", at, md, {
      at: at.toISOString(),
      writes: WRITES,
      writeToVisibleMs: {
        gossip: { p50: percentile(gossip, 50), p99: percentile(gossip, 99) },
        redis: { p50: percentile(redis, 50), p99: percentile(redis, 99) },
        redisPing: { p50: percentile(ping, 50), p99: percentile(ping, 99) },
      },
      signInsPerSecond: {
        gossip: gossipRate.rate,
        redis: redisRate.rate,
        rounds: rounds.map((r) => ({ alone: r.alone.rate, noWait: r.noWait.rate, wait: r.wait.rate })),
        signIns: SIGNINS,
        concurrency: CONCURRENCY,
      },
      confirmationP99Ms: {
        gossip: percentile(gossipRate.confirmMs, 99),
        redis: percentile(redisRate.confirmMs, 99),
        rounds: rounds.map((r) => ({
          alone: percentile(r.alone.confirmMs, 99),
          noWait: percentile(r.noWait.confirmMs, 99),
          wait: percentile(r.wait.confirmMs, 99),
        })),
      },
      writeToAcknowledgedMs: acks.map((r) => ({
        alone: { p50: percentile(r.alone, 50), p99: percentile(r.alone, 99) },
        noWait: { p50: percentile(r.noWait, 50), p99: percentile(r.noWait, 99) },
        wait: { p50: percentile(r.wait, 50), p99: percentile(r.wait, 99) },
      })),
      failover: failed,
      loadAverage: os.loadavg(),
    });
  } finally {
    await stopAllNodes();
    await stopRedisServers();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
