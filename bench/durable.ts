/**
 * npm run bench:durable — what durability costs and how fast a node comes back, on this machine:
 *  1. sign-ins per second and confirm latency (p50/p99) on one real server, with its tables file
 *     (PERSISTENCE=file) beside the same run without one (PERSISTENCE=off, the anchor);
 *  2. restart from a tables file of 100k and 1M users (user + email claim + session each): spawn →
 *     serving, beside the start of the same server on an empty DATA_DIR (the anchor).
 * Bounded: fixed counts, every wait with a deadline. Writes bench/results/durable-<time>.{md,json}.
 */
import { randomUUID } from "node:crypto";
import { readdirSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ClusterStore } from "#cluster";
import { seed } from "./scale-servers";
import { userSchema } from "#app/lib/accounts/users.server.ts";
import { startNode, stopAllNodes, tempDir, testSecret, uniqueName, type NodeProcess } from "../tests/support/node";
import { TestSmtpServer } from "../tests/support/smtp";
import { waitFor } from "../tests/support/wait";
import { rssMb } from "./proc";
import { confirmSignIns, round, signInBenchEnv } from "./sign-ins";
import { writeResults } from "./results";

const SIGN_INS = Number(process.env.BENCH_SIGN_INS ?? 300);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const LOAD_SIZES = (process.env.BENCH_LOAD ?? "100000,1000000")
  .split(",")
  .map(Number)
  .filter((n) => n > 0);
const SCHEMA_ROWS = Number(process.env.BENCH_SCHEMA_ROWS ?? 1_000_000);
const DAY = 24 * 3600_000;

interface SignInResult {
  mode: string;
  signIns: number;
  perSecond: number;
  p50: number;
  p99: number;
  max: number;
}

/** Request every link first, then confirm them CONCURRENCY at a time: the confirm is the sign-in's write. */
async function signIns(mode: "file" | "off", smtp: TestSmtpServer): Promise<SignInResult> {
  const node = await startNode({ env: { PERSISTENCE: mode, ...signInBenchEnv(smtp) } });
  const f = await confirmSignIns(node, smtp, { count: SIGN_INS, concurrency: CONCURRENCY, tag: mode });
  await node.stop();
  return { mode, signIns: f.signIns, perSecond: f.perSecond, p50: f.p50, p99: f.p99, max: f.max };
}

interface LoadResult {
  users: number;
  rows: number;
  fileMb: number;
  seedMs: number;
  /** spawn → /healthz answers (the node serves) */
  serveMs: number;
  /** the file read back into the store (from the node's own log line), wall and CPU time */
  restoreMs: number;
  restoreCpuMs: number;
  /** restore done → HTTP listening: the app opening its tables (schema checks) and the rest */
  restoredToListeningMs: number;
  rssMb: number;
}

/** From the node's log: tables restored → HTTP listening (app start: build, services, indexes). */
function restoredToListening(node: NodeProcess): number {
  const events = node.events();
  const restored = events.find((e) => e.msg === "cluster: tables restored from the file");
  const listening = events.find((e) => typeof e.msg === "string" && e.msg.startsWith("listening on"));
  const at = (e: Record<string, unknown> | undefined) => (e ? Date.parse(String(e.time)) : NaN);
  return at(listening) - at(restored);
}

async function timedStart(dataDir: string, env: Record<string, string>): Promise<{ node: NodeProcess; ms: number }> {
  const t0 = performance.now();
  const node = await startNode({ dataDir, env, waitUntil: "none" });
  await waitFor(
    "the node to serve",
    async () => {
      if (node.exitCode !== undefined) throw new Error(`node exited:\n${node.log}`);
      return (await node.fetch("/healthz")).ok;
    },
    120_000,
    20,
  );
  return { node, ms: performance.now() - t0 };
}

async function load(users: number, env: Record<string, string>): Promise<LoadResult> {
  const dataDir = tempDir("pwdless-bench-load");
  const s0 = performance.now();
  // written as sign-ins write them, through the app's stores (bench:scale's writer)
  const { rows } = await seed(dataDir, env.CLUSTER_NAME!, users);
  const seedMs = performance.now() - s0;
  const { node, ms } = await timedStart(dataDir, env);
  const status = (await (await node.fetch("/cluster.json")).json()) as { tables: Record<string, number> };
  if (status.tables.users !== users || status.tables.sessions !== users) {
    throw new Error(`restored ${JSON.stringify(status.tables)}, expected ${users} users and sessions`);
  }
  const restored = node.events().find((e) => e.msg === "cluster: tables restored from the file");
  const result: LoadResult = {
    users,
    rows,
    fileMb: round(
      readdirSync(dataDir)
        .filter((f) => f.startsWith("tables"))
        .reduce((sum, f) => sum + statSync(path.join(dataDir, f)).size, 0) /
        1024 /
        1024,
    ),
    seedMs: round(seedMs, 0),
    serveMs: round(ms, 0),
    restoreMs: Number(restored?.ms ?? NaN),
    restoreCpuMs: Number(restored?.cpuMs ?? NaN),
    restoredToListeningMs: restoredToListening(node),
    rssMb: rssMb(node.proc.pid),
  };
  await node.stop();
  rmSync(dataDir, { recursive: true, force: true });
  return result;
}

interface SchemaResult {
  rows: number;
  origin: "restore" | "sync";
  wallMs: number;
  cpuMs: number;
}

/**
 * The app opens `users` with its zod schema after the restore: what that costs when the rows came
 * from this node's file (trusted) beside rows a peer sent before the schema was known (checked).
 */
function schemaOpen(rows: number, origin: "restore" | "sync"): SchemaResult {
  const store = new ClusterStore({ nodeId: "bench" });
  const t = Date.now() - DAY;
  for (let i = 0; i < rows; i++) {
    const id = randomUUID();
    const email = `user${i}@example.com`;
    const value = {
      id,
      email,
      createdAt: t,
      createdOn: "n",
      identities: [{ provider: "email", subject: email, linkedAt: t }],
    };
    store.applyRemote({ table: "users", key: id, value, stamp: { t, c: 0, n: "n" } }, origin);
  }
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  store.table("users", { schema: userSchema });
  const used = process.cpuUsage(cpu);
  return { rows, origin, wallMs: round(performance.now() - t0, 0), cpuMs: round((used.user + used.system) / 1000, 0) };
}

async function main() {
  const startedAt = new Date();
  const smtp = await new TestSmtpServer().start();
  const results: {
    signIns: SignInResult[];
    loads: LoadResult[];
    emptyStartMs: number;
    emptyRestoredToListeningMs: number;
    schema: SchemaResult[];
  } = {
    schema: [],
    signIns: [],
    loads: [],
    emptyStartMs: NaN,
    emptyRestoredToListeningMs: NaN,
  };
  try {
    // interleaved rounds: on a shared machine the load drifts, and each mode sees both ends of it
    for (let round = 0; round < ROUNDS; round++) {
      for (const mode of ["off", "file"] as const) {
        results.signIns.push(await signIns(mode, smtp));
        console.log(`  sign-ins, PERSISTENCE=${mode}, round ${round + 1}: done`);
      }
    }
    const env = { CLUSTER_NAME: uniqueName("bench-load"), SECRET_KEY_BASE: testSecret() };
    const empty = tempDir("pwdless-bench-empty");
    const first = await timedStart(empty, env);
    results.emptyStartMs = round(first.ms, 0);
    results.emptyRestoredToListeningMs = restoredToListening(first.node);
    if (SCHEMA_ROWS > 0) {
      results.schema.push(schemaOpen(SCHEMA_ROWS, "sync"), schemaOpen(SCHEMA_ROWS, "restore"));
      console.log(`  opening ${SCHEMA_ROWS} users with the schema: done`);
    }
    await first.node.stop();
    rmSync(empty, { recursive: true, force: true });
    for (const users of LOAD_SIZES) {
      results.loads.push(await load(users, env));
      console.log(`  restart with ${users} users: done`);
    }
  } finally {
    await stopAllNodes();
    await smtp.stop();
  }

  const median = (mode: string, pick: (r: SignInResult) => number) => {
    const values = results.signIns.filter((r) => r.mode === mode).map(pick);
    return round(values.reduce((a, b) => a + b, 0) / values.length);
  };
  const off =
    results.signIns.length > 0
      ? { perSecond: median("off", (r) => r.perSecond), p99: median("off", (r) => r.p99) }
      : undefined;
  const on =
    results.signIns.length > 0
      ? { perSecond: median("file", (r) => r.perSecond), p99: median("file", (r) => r.p99) }
      : undefined;
  const lines = [
    `# Durability benchmark, ${startedAt.toISOString()}`,
    "",
    `Machine: ${os.cpus().length} cores (load average ${os.loadavg()[0]!.toFixed(1)} at the end), Node ${process.version}, loopback only; one server process.`,
    "",
    `## Sign-ins (${SIGN_INS} link confirmations, ${CONCURRENCY} at a time; each writes user, email claim, session, link use)`,
    "",
    "| tables file | sign-ins/s | p50 ms | p99 ms | max ms |",
    "|---|---|---|---|---|",
    ...results.signIns.map(
      (r) =>
        `| ${r.mode === "off" ? "none (PERSISTENCE=off, anchor)" : "tables files, answer after commit"} | ${r.perSecond} | ${r.p50} | ${r.p99} | ${r.max} |`,
    ),
    "",
    off && on
      ? `Means over ${ROUNDS} interleaved rounds: ${on.perSecond} sign-ins/s with the file vs ${off.perSecond} without (${round((1 - on.perSecond / off.perSecond) * 100, 0)} % of throughput); p99 ${on.p99} ms vs ${off.p99} ms.`
      : "",
    "",
    "## Restart from the tables file (users + email claims + sessions)",
    "",
    `Anchor: the same server started on an empty DATA_DIR, spawn → serving: **${results.emptyStartMs} ms** (restored → listening ${results.emptyRestoredToListeningMs} ms). Goal: 1M users serving in ≤ 10 000 ms.`,
    "",
    "| users | rows | file MB | spawn → serving ms | file read back ms (CPU ms) | restored → listening ms | RSS MB |",
    "|---|---|---|---|---|---|---|",
    ...results.loads.map(
      (r) =>
        `| ${r.users} | ${r.rows} | ${r.fileMb} | ${r.serveMs} | ${r.restoreMs} (${r.restoreCpuMs}) | ${r.restoredToListeningMs} | ${r.rssMb} |`,
    ),
    "",
    "## Opening a table with its schema after the restore (in this process)",
    "",
    "| rows | came from | wall ms | CPU ms |",
    "|---|---|---|---|",
    ...results.schema.map(
      (r) =>
        `| ${r.rows} | ${r.origin === "sync" ? "peers, before the schema was known: checked (anchor)" : "this node's file: trusted"} | ${r.wallMs} | ${r.cpuMs} |`,
    ),
    "",
  ];
  const table = lines.join("\n");
  console.log(`\n${table}`);
  writeResults("durable", startedAt, table, { startedAt, sign_ins: SIGN_INS, concurrency: CONCURRENCY, ...results });
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
