/**
 * npm run bench:admin — the operator's search at scale, figures not a test: one real server process
 * (the built server, its tables file on) holding N users (default 1M; users with their identities,
 * address claims and a session each, seeded into its file by bench/seed.ts, as bench:durable does),
 * and the admin API's answers timed one at a time over loopback, interleaved with `GET /healthz` on
 * the same node as the anchor:
 *  - an address typed in full (a prefix search finding one), a prefix that matches ~11 % of them
 *    (`user4`: a full page), the next page of it by cursor, a search by user id, and a user's page;
 *  - start-up: spawn → serving, and serving → the address index built (searches answered).
 * Bounded: fixed counts, every wait has a deadline. Writes bench/results/admin-<time>.{md,json}.
 */
import { randomBytes } from "node:crypto";
import { rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { startNode, stopAllNodes, tempDir, testSecret, uniqueName, type NodeProcess } from "../tests/support/node";
import { waitFor } from "../tests/support/wait";
import { rssMb } from "./proc";
import { seededEmail, seedTablesFile } from "./seed";
import { pct, round } from "./sign-ins";
import { writeResults } from "./results";

const USERS = Number(process.env.BENCH_ADMIN_USERS ?? 1_000_000);
/** timed answers per kind */
const REQUESTS = Number(process.env.BENCH_ADMIN_REQUESTS ?? 300);
const WARM_UP = 30;
const PAGE = 50;
const TOKEN = randomBytes(32).toString("base64url");
/** how long a node of N users may take to serve: 10 min per million, at least 3 min */
const serveDeadline = Math.max(180_000, (USERS / 1_000_000) * 600_000);

type Kind = "healthz" | "narrow" | "broad" | "nextPage" | "byId" | "user";
const KINDS: Record<Kind, string> = {
  healthz: "`GET /healthz` (anchor)",
  narrow: "an address typed in full (a prefix search that finds one)",
  broad: "prefix search `user<d>`, ~11 % of all users: a full page of 50",
  nextPage: "the next page of that search (cursor)",
  byId: "search by user id (`query=<uuid>`)",
  user: "a user's page: `GET /api/admin/users/:id`",
};

type Page = { users: { id: string; email: string }[]; nextCursor: string | null };

const pick = (n: number) => Math.floor(Math.random() * n);

async function timed(node: NodeProcess, pathname: string, admin: boolean): Promise<{ ms: number; body: unknown }> {
  const t0 = performance.now();
  const res = await node.fetch(pathname, admin ? { headers: { Authorization: `Bearer ${TOKEN}` } } : {});
  const text = await res.text();
  const ms = performance.now() - t0;
  if (res.status !== 200) throw new Error(`${pathname} answered ${res.status}: ${text.slice(0, 200)}`);
  return { ms, body: admin ? (JSON.parse(text) as unknown) : text };
}

/** One round of every kind, in a shuffled order; checks each answer is the right one. */
async function round1(node: NodeProcess, ids: string[], into: Record<Kind, number[]> | undefined): Promise<void> {
  const note = (kind: Kind, ms: number) => void into?.[kind].push(ms);
  const steps: Array<() => Promise<void>> = [
    async () => note("healthz", (await timed(node, "/healthz", false)).ms),
    async () => {
      const i = pick(USERS);
      const { ms, body } = await timed(node, `/api/admin/users?query=${encodeURIComponent(seededEmail(i))}`, true);
      const found = (body as Page).users;
      if (found.length !== 1 || found[0]!.email !== seededEmail(i))
        throw new Error(`the search for ${seededEmail(i)} found ${JSON.stringify(found).slice(0, 200)}`);
      ids.push(found[0]!.id);
      note("narrow", ms);
    },
    async () => {
      const d = 1 + pick(9);
      const { ms, body } = await timed(node, `/api/admin/users?query=user${d}&limit=${PAGE}`, true);
      const page = body as Page;
      if (page.users.length !== Math.min(PAGE, USERS) || !page.nextCursor)
        throw new Error(`the search for user${d} gave ${page.users.length} users`);
      note("broad", ms);
      const next = await timed(
        node,
        `/api/admin/users?query=user${d}&limit=${PAGE}&cursor=${encodeURIComponent(page.nextCursor)}`,
        true,
      );
      const second = (next.body as Page).users;
      if (second.length === 0 || second[0]!.email <= page.users[PAGE - 1]!.email)
        throw new Error("the next page does not follow the first");
      note("nextPage", next.ms);
    },
    async () => {
      const id = ids[pick(ids.length)]!;
      const { ms, body } = await timed(node, `/api/admin/users?query=${id}`, true);
      if ((body as Page).users[0]?.id !== id) throw new Error(`the search by id ${id} did not find it`);
      note("byId", ms);
    },
    async () => {
      const id = ids[pick(ids.length)]!;
      const { ms, body } = await timed(node, `/api/admin/users/${id}`, true);
      const user = body as { id: string; identities: unknown[]; sessions: unknown[] };
      if (user.id !== id || user.identities.length !== 1 || user.sessions.length !== 1)
        throw new Error(`the page of ${id} is not the seeded user's: ${JSON.stringify(user).slice(0, 200)}`);
      note("user", ms);
    },
  ];
  for (let i = steps.length - 1; i > 0; i--) {
    const j = pick(i + 1);
    [steps[i], steps[j]] = [steps[j]!, steps[i]!];
  }
  for (const step of steps) await step();
}

async function main() {
  const startedAt = new Date();
  const loadAtStart = os.loadavg();
  console.log(`bench:admin on ${startedAt.toISOString()}: ${USERS} users, ${REQUESTS} answers per kind`);
  const dataDir = tempDir("pwdless-bench-admin");
  const clusterName = uniqueName("bench-admin");
  const figures: Record<string, unknown> = { startedAt, users: USERS, requests: REQUESTS, page: PAGE };
  let report = "";
  try {
    const s0 = performance.now();
    const rows = seedTablesFile(path.join(dataDir, "tables.db"), clusterName, USERS);
    const seedMs = performance.now() - s0;
    const fileMb = round(statSync(path.join(dataDir, "tables.db")).size / 1024 / 1024);
    console.log(`  seeded ${rows} rows (${fileMb} MB) in ${Math.round(seedMs)} ms`);

    const t0 = performance.now();
    const node = await startNode({
      dataDir,
      waitUntil: "none",
      env: {
        CLUSTER_NAME: clusterName,
        SECRET_KEY_BASE: testSecret(),
        ADMIN_API_TOKEN: TOKEN,
        RATE_LIMIT_REQUESTS_PER_IP: "1000000",
      },
    });
    await waitFor(
      "the node to serve",
      async () => {
        if (node.exitCode !== undefined) throw new Error(`node exited:\n${node.log.slice(-3000)}`);
        return (await node.fetch("/healthz").catch(() => undefined))?.ok ?? false;
      },
      serveDeadline,
      50,
    );
    const serveMs = performance.now() - t0;
    const t1 = performance.now();
    // the index is built in slices after start: a search for an address nobody has answers 503 until then
    await waitFor(
      "the address index to be built",
      async () => {
        const res = await node.fetch("/api/admin/users?query=nobody-has-this&limit=1", {
          headers: { Authorization: `Bearer ${TOKEN}` },
        });
        await res.arrayBuffer();
        if (res.status !== 200 && res.status !== 503) throw new Error(`the search answered ${res.status}`);
        return res.status === 200;
      },
      serveDeadline,
      50,
    );
    const indexMs = performance.now() - t1;
    const status = (await (await node.fetch("/cluster.json")).json()) as { tables: Record<string, number> };
    if (status.tables.users !== USERS || status.tables.emails !== USERS || status.tables.sessions !== USERS)
      throw new Error(`the node holds ${JSON.stringify(status.tables)}, not ${USERS} users`);
    console.log(`  serving after ${Math.round(serveMs)} ms, index built ${Math.round(indexMs)} ms later`);

    const ids = ((await timed(node, `/api/admin/users?query=user1&limit=${PAGE}`, true)).body as Page).users.map(
      (u) => u.id,
    );
    for (let i = 0; i < WARM_UP; i++) await round1(node, ids, undefined);
    const samples: Record<Kind, number[]> = { healthz: [], narrow: [], broad: [], nextPage: [], byId: [], user: [] };
    const measuredFrom = performance.now();
    for (let i = 0; i < REQUESTS; i++) await round1(node, ids, samples);
    const measuredS = (performance.now() - measuredFrom) / 1000;
    const rss = rssMb(node.proc.pid);
    await node.stop();
    const loadAtEnd = os.loadavg();

    const rowsOut = (Object.keys(KINDS) as Kind[]).map((kind) => {
      const sorted = [...samples[kind]].sort((a, b) => a - b);
      return {
        kind,
        count: sorted.length,
        p50: round(pct(sorted, 50), 2),
        p99: round(pct(sorted, 99), 2),
        max: round(sorted[sorted.length - 1]!, 2),
      };
    });
    const anchor = rowsOut.find((r) => r.kind === "healthz")!;
    Object.assign(figures, { rows, fileMb, seedMs, serveMs, indexMs, rssMb: rss, measuredS, results: rowsOut });
    const load = (l: number[]) => l.map((x) => x.toFixed(1)).join(" ");
    report = [
      `# Admin search benchmark, ${startedAt.toISOString()}`,
      "",
      `Machine: ${os.cpus().length} cores, Node ${process.version}, loopback only; one server process (\`build/node/index.js\`, tables files on).`,
      `Load average (1, 5, 15 min) at the start: ${load(loadAtStart)}; at the end: ${load(loadAtEnd)} — the machine is shared; compare each figure with the anchor.`,
      "",
      `The node's tables file held ${USERS} users (${rows} rows: user with its email identity, address claim, one session each; ${fileMb} MB), written with the product's writer before the start. Spawn → serving ${round(serveMs / 1000)} s; serving → address index built ${round(indexMs / 1000)} s; RSS after the run ${rss} MB.`,
      "",
      `${REQUESTS} answers of each kind, one request at a time over one keep-alive connection, the kinds shuffled in every round (after ${WARM_UP} warm-up rounds); time from sending to the whole body read, ms:`,
      "",
      "| request | p50 ms | p99 ms | max ms | p50 / anchor p50 |",
      "|---|---|---|---|---|",
      ...rowsOut.map(
        (r) =>
          `| ${KINDS[r.kind]} | ${r.p50} | ${r.p99} | ${r.max} | ${r.kind === "healthz" ? "anchor" : `${(r.p50 / anchor.p50).toFixed(2)}×`} |`,
      ),
      "",
    ].join("\n");
  } finally {
    await stopAllNodes();
    rmSync(dataDir, { recursive: true, force: true });
  }
  console.log(`\n${report}`);
  writeResults("admin", startedAt, report, figures);
}

main().catch(async (error) => {
  console.error(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  await stopAllNodes();
  process.exit(1);
});
