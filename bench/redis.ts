/**
 * npm run bench:redis — figures, not a test: Redis mode beside gossip mode, measured in the same run.
 *  1. write on one node → visible on another (cluster library, two nodes in this process, so one
 *     clock times both ends), p50/p99; anchor: gossip mode, and a bare Redis PING round trip;
 *  2. sign-ins per second on one node of a two-node cluster (real server processes over HTTP,
 *     email link end to end), Redis mode beside gossip mode.
 * Bounded: a fixed number of writes and sign-ins, each wait with a deadline. Prints a table and
 * writes it to bench/results/.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os, { tmpdir } from "node:os";
import path from "node:path";
import { createClient } from "redis";
import { startCluster, type Cluster, type ClusterConfig, type Logger } from "../cluster";
import { clusterEnv, startClusterNodes, waitForMesh } from "../tests/support/cluster";
import { signIn } from "../tests/support/flows";
import { startNode, stopAllNodes, type NodeProcess } from "../tests/support/node";
import { redisClusterEnv, startRedisServer, stopRedisServers, waitForRedisCluster } from "../tests/support/redis";
import { waitFor } from "../tests/support/wait";

const ROOT = path.resolve(import.meta.dirname, "..");
const WRITES = Number(process.env.BENCH_WRITES ?? 300);
const SIGNINS = Number(process.env.BENCH_SIGNINS ?? 40);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4);

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

/** Sign-ins per second on the first node, CONCURRENCY at a time, every one a new address. */
async function signInsPerSecond(nodes: NodeProcess[], label: string): Promise<number> {
  const node = nodes[0]!;
  await signIn(node, `warm-${label}@example.com`);
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < SIGNINS) {
        const i = next++;
        await signIn(node, `bench-${label}-${i}@example.com`);
      }
    }),
  );
  return SIGNINS / ((performance.now() - started) / 1000);
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
    const env = { ...redisClusterEnv(redisServer), ...LIMITS };
    const redisNodes = [await startNode({ env }), await startNode({ env })];
    await waitForRedisCluster(redisNodes);
    const redisRate = await signInsPerSecond(redisNodes, "redis");
    await stopAllNodes();
    console.log("  sign-ins: done");

    const at = new Date();
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
      "| transport | sign-ins | concurrency | sign-ins/s |",
      "|---|---|---|---|",
      `| gossip (anchor) | ${SIGNINS} | ${CONCURRENCY} | ${gossipRate.toFixed(1)} |`,
      `| Redis | ${SIGNINS} | ${CONCURRENCY} | ${redisRate.toFixed(1)} |`,
      "",
    ].join("\n");
    console.log(`\n${md}`);
    const dir = path.join(ROOT, "bench", "results");
    mkdirSync(dir, { recursive: true });
    const stamp = at.toISOString().replace(/[:T]/g, "-").replace(/\..*/, "");
    writeFileSync(path.join(dir, `redis-${stamp}.md`), md);
    writeFileSync(
      path.join(dir, `redis-${stamp}.json`),
      JSON.stringify(
        {
          at: at.toISOString(),
          writes: WRITES,
          writeToVisibleMs: {
            gossip: { p50: percentile(gossip, 50), p99: percentile(gossip, 99) },
            redis: { p50: percentile(redis, 50), p99: percentile(redis, 99) },
            redisPing: { p50: percentile(ping, 50), p99: percentile(ping, 99) },
          },
          signInsPerSecond: { gossip: gossipRate, redis: redisRate, signIns: SIGNINS, concurrency: CONCURRENCY },
        },
        null,
        2,
      ),
    );
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
