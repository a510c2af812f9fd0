/**
 * npm run bench:faults — issue 20's gossip-mode figures, each beside its anchor from the same run:
 *  1. replicated acknowledgements: sign-ins/s, confirmation p50/p99 and the cluster's CPU per
 *     sign-in on two members of one three-node cluster of real server processes (tables files
 *     on), one answering with ACK_COPIES=2, one with ACK_COPIES=1 (the anchor: an answer after
 *     its own commit only), in short alternating rounds;
 *  2. failure seen: SIGKILL and SIGSTOP (a frozen peer, connection open) → shown down on another
 *     node's /cluster.json, beside the silence limit it is built on;
 *  3. a member joins through 64 stalled keyless connections from ten addresses (a known member
 *     and a never-seen one), beside the same join with no flood;
 *  4. a catch-up of many users (in-process worker nodes, bench/scale-worker.ts) with heartbeats
 *     running: does it finish, and is a busy peer ever marked down meanwhile.
 * Bounded: fixed counts, every wait has a deadline. Writes bench/results/faults-<time>.{md,json}.
 * Parts: BENCH_PARTS=acks,liveness,flood,catchup (default all).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { randomBytes } from "node:crypto";
import os from "node:os";
import path from "node:path";
import { multiaddr } from "@multiformats/multiaddr";
import type { Libp2p } from "libp2p";
import { clusterEnv, startClusterNodes, waitForMesh } from "../tests/support/cluster";
import { CookieJar } from "../tests/support/cookie-jar";
import { flood, keyedMember, memberFrom, TEN_ADDRESSES } from "../tests/support/flood";
import { browse, pathOf, requestLink } from "../tests/support/flows";
import { startNode, stopAllNodes, testSecret, uniqueName, type NodeProcess } from "../tests/support/node";
import { freePort } from "../tests/support/ports";
import { TestSmtpServer } from "../tests/support/smtp";
import { waitFor } from "../tests/support/wait";
import { killAllWorkers, spawnWorker, type Msg } from "./ipc";
import { writeResults } from "./results";

const PARTS = new Set((process.env.BENCH_PARTS ?? "acks,liveness,flood,catchup").split(","));
const SIGN_INS = Number(process.env.BENCH_SIGN_INS ?? 60);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 5);
const CATCHUP_USERS = Number(process.env.BENCH_CATCHUP_USERS ?? 100_000);

const round = (n: number, digits = 1) => Number(n.toFixed(digits));
const pct = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
};
const loads: number[] = [];
const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"]).stdout?.toString().trim() || 100);
/** CPU a process has used so far, ms (user + system, from /proc) */
function cpuMs(pid: number | undefined): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return ((Number(fields[11]) + Number(fields[12])) / CLK_TCK) * 1000;
}
const noteLoad = () => loads.push(round(os.loadavg()[0]!, 1));

// --- 1. replicated acknowledgements ---

interface AckRound {
  copies: number;
  signIns: number;
  perSecond: number;
  p50: number;
  p99: number;
  max: number;
  /** B's own view: how long its answers waited for a peer's copy, and how they went */
  waitP50: number | null;
  waitP99: number | null;
  copied: number;
  timedOut: number;
  /** CPU of all three server processes per sign-in, ms: the steadier figure on a loaded machine */
  clusterCpuMs: number;
  load: number;
}

/** Links for `count` sign-ins, requested on `node` (it issues them, and decides their use). */
async function requestLinks(node: NodeProcess, count: number, smtp: TestSmtpServer, tag: string) {
  const pending: { jar: CookieJar; link: string }[] = [];
  for (let i = 0; i < count; i += CONCURRENCY) {
    pending.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(CONCURRENCY, count - i) }, async (_, j) => {
          const jar = new CookieJar();
          return { jar, link: await requestLink(node, jar, `${tag}-${i + j}@example.com`, smtp) };
        }),
      )),
    );
  }
  return pending;
}

/** Confirm the links on `node`, CONCURRENCY at a time: each confirmation is a sign-in's writes and its answer. */
async function ackRound(
  node: NodeProcess,
  nodes: NodeProcess[],
  copies: number,
  smtp: TestSmtpServer,
  tag: string,
): Promise<AckRound> {
  const pending = await requestLinks(node, SIGN_INS, smtp, tag);
  const latencies: number[] = [];
  let next = 0;
  const cpuBefore = nodes.map((n) => cpuMs(n.proc.pid));
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < pending.length) {
        const { jar, link } = pending[next++]!;
        const t0 = performance.now();
        const res = await browse(node, jar, pathOf(link), { method: "POST" });
        latencies.push(performance.now() - t0);
        if (res.status !== 302) throw new Error(`a sign-in answered ${res.status}`);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const cpu = nodes.reduce((sum, n, i) => sum + cpuMs(n.proc.pid) - cpuBefore[i]!, 0);
  const acks = (
    (await (await node.fetch("/cluster.json")).json()) as {
      acks: { waitMs: { p50: number | null; p99: number | null }; counters: { copied: number; timedOut: number } };
    }
  ).acks;
  return {
    copies,
    signIns: latencies.length,
    perSecond: round(latencies.length / seconds),
    p50: round(pct(latencies, 50)),
    p99: round(pct(latencies, 99)),
    max: round(Math.max(...latencies)),
    waitP50: acks.waitMs.p50,
    waitP99: acks.waitMs.p99,
    copied: acks.counters.copied,
    timedOut: acks.counters.timedOut,
    clusterCpuMs: round(cpu / latencies.length),
    load: round(os.loadavg()[0]!, 1),
  };
}

/**
 * Three members of one cluster: one answers with ACK_COPIES=1, one with ACK_COPIES=2 (the third
 * keeps the default and holds copies). Short rounds alternate between the two, in alternating
 * order, so both settings see the same moments of a shared machine's load.
 */
async function acksPart(): Promise<AckRound[]> {
  const smtp = await new TestSmtpServer().start();
  try {
    const env = {
      ...clusterEnv(),
      SMTP_URL: smtp.url,
      RATE_LIMIT_REQUESTS_PER_IP: "1000000",
      RATE_LIMIT_OPENINGS_PER_IP: "1000000",
    };
    const one = await startNode({ env: { ...env, ACK_COPIES: "1" } });
    const two = await startNode({ env: { ...env, ACK_COPIES: "2" } });
    const nodes = [one, two, await startNode({ env })];
    await waitForMesh(nodes, 120_000);
    const rounds: AckRound[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      for (const copies of r % 2 === 0 ? [1, 2] : [2, 1]) {
        rounds.push(await ackRound(copies === 1 ? one : two, nodes, copies, smtp, uniqueName(`acks${copies}-r${r}`)));
        console.log(`  acks: ACK_COPIES=${copies}, round ${r + 1}: ${rounds.at(-1)!.perSecond} sign-ins/s`);
        noteLoad();
      }
    }
    return rounds;
  } finally {
    await stopAllNodes();
    await smtp.stop();
  }
}

// --- 2. failure seen ---

interface LivenessFigures {
  killMs: number[];
  freezeMs: number[];
  thawMs: number[];
  downAfterMs: number;
  heartbeatMs: number;
}

type PeerView = { id: string; up?: boolean; connected: boolean };
const peersOf = async (node: NodeProcess) =>
  ((await (await node.fetch("/cluster.json")).json()) as { peers: PeerView[] }).peers;

async function timeUntil(node: NodeProcess, id: string, up: boolean, since: number): Promise<number> {
  await waitFor(
    `peer ${id.slice(-6)} ${up ? "up" : "down"}`,
    async () => (await peersOf(node)).some((p) => p.id === id && (p.up ?? false) === up),
    30_000,
    10,
  );
  return round(performance.now() - since, 0);
}

async function livenessPart(): Promise<LivenessFigures> {
  try {
    const nodes = await startClusterNodes(3, clusterEnv());
    await waitForMesh(nodes, 120_000);
    const status = (await (await nodes[0]!.fetch("/cluster.json")).json()) as {
      liveness: { downAfterMs: number; heartbeatMs: number };
    };
    const figures: LivenessFigures = { killMs: [], freezeMs: [], thawMs: [], ...status.liveness };
    for (let i = 0; i < REPEATS; i++) {
      const [a, b, c] = nodes as [NodeProcess, NodeProcess, NodeProcess];
      const [bId, cId] = [await b.nodeId(), await c.nodeId()];
      const killedAt = performance.now();
      c.proc.kill("SIGKILL");
      figures.killMs.push(await timeUntil(a, cId, false, killedAt));
      await c.waitForExit();
      nodes[2] = await startNode({ env: c.env, port: c.port, dataDir: c.dataDir });
      await waitForMesh(nodes, 120_000);
      const frozenAt = performance.now();
      b.proc.kill("SIGSTOP");
      try {
        figures.freezeMs.push(await timeUntil(a, bId, false, frozenAt));
      } finally {
        b.proc.kill("SIGCONT");
      }
      figures.thawMs.push(await timeUntil(a, bId, true, performance.now()));
      await waitForMesh(nodes, 120_000);
      noteLoad();
    }
    console.log(`  liveness: ${REPEATS} kills and freezes done`);
    return figures;
  } finally {
    await stopAllNodes();
  }
}

// --- 3. a join through a flood ---

interface FloodFigures {
  calmMs: number[];
  knownMs: number[];
  strangerMs: number[];
  refused: Record<string, number>;
}

async function dialMs(member: Libp2p, port: number): Promise<number> {
  const t0 = performance.now();
  await member.dial(multiaddr(`/ip4/127.0.0.1/tcp/${port}`), { signal: AbortSignal.timeout(30_000) });
  return round(performance.now() - t0, 0);
}

async function floodPart(): Promise<FloodFigures> {
  const secret = testSecret();
  const clusterName = uniqueName("bench-flood");
  const port = await freePort();
  const figures: FloodFigures = { calmMs: [], knownMs: [], strangerMs: [], refused: {} };
  try {
    const node = await startNode({
      env: { SECRET_KEY_BASE: secret, CLUSTER_NAME: clusterName, CLUSTER_PORT: String(port) },
    });
    for (let i = 0; i < REPEATS; i++) {
      // the anchor: a known member (127.0.0.1, a peer with the key came from it) joins with no flood
      const calm = await keyedMember(secret, clusterName);
      figures.calmMs.push(await dialMs(calm, port));
      await calm.stop();
      const known = await keyedMember(secret, clusterName);
      const stranger = await memberFrom(`127.0.0.${3 + i}`, secret, clusterName);
      const attack = flood(port, TEN_ADDRESSES);
      try {
        await waitFor("the flood to be open", () => attack.open() >= 1 && attack.opened() >= TEN_ADDRESSES.size);
        figures.knownMs.push(await dialMs(known, port));
        figures.strangerMs.push(await dialMs(stranger, port));
      } finally {
        attack.stop();
        await known.stop();
        await stranger.stop();
      }
      noteLoad();
    }
    figures.refused = (
      (await (await node.fetch("/cluster.json")).json()) as { inboundRefused: Record<string, number> }
    ).inboundRefused;
    console.log(`  flood: ${REPEATS} joins done`);
    return figures;
  } finally {
    await stopAllNodes();
  }
}

// --- 4. a catch-up with heartbeats running ---

interface CatchUpFigures {
  users: number;
  readyMs: number;
  catchUpFailures: number;
  /** peers marked down meanwhile: on the serving node, on the joiner */
  writerPeersDown: number;
  joinerPeersDown: number;
  joinerMaxStallMs: number;
  writerMaxStallMs: number;
}

type WorkerStatus = Msg & { users: number; catchUpFailures: number; peersDown: number };

async function catchUpPart(): Promise<CatchUpFigures> {
  const env = {
    BENCH_CLUSTER: `faults-${randomBytes(4).toString("hex")}`,
    BENCH_KEY: randomBytes(32).toString("hex"),
    BENCH_REGISTRY: mkdtempSync(path.join(os.tmpdir(), "pwdless-bench-reg-")),
  };
  const heap = ["--expose-gc", "--max-old-space-size=8192"];
  const writer = spawnWorker("bench/scale-worker.ts", env, heap);
  const workers = [writer];
  try {
    await writer.next("started", 60_000, true);
    writer.send({ cmd: "bulk", count: CATCHUP_USERS });
    await writer.next("bulk-done", 60 * 60_000);
    await writer.ask("delay-reset");
    const joiner = spawnWorker("bench/scale-worker.ts", env, heap);
    workers.push(joiner);
    await joiner.next("started", 60_000, true);
    await joiner.ask("delay-reset");
    const deadline = Math.max(300_000, (CATCHUP_USERS / 100_000) * 300_000);
    const ready = await joiner.next("ready", deadline, true);
    await waitFor(
      `the joiner to hold ${CATCHUP_USERS} users`,
      async () => (await joiner.ask<WorkerStatus>("status")).users === CATCHUP_USERS,
      deadline,
      500,
    );
    const [w, j] = [await writer.ask<WorkerStatus>("status"), await joiner.ask<WorkerStatus>("status")];
    const [wd, jd] = [
      await writer.ask<Msg & { maxMs: number }>("delay"),
      await joiner.ask<Msg & { maxMs: number }>("delay"),
    ];
    noteLoad();
    console.log(`  catch-up: ${CATCHUP_USERS} users done`);
    return {
      users: CATCHUP_USERS,
      readyMs: ready.fromUpMs as number,
      catchUpFailures: j.catchUpFailures,
      writerPeersDown: w.peersDown,
      joinerPeersDown: j.peersDown,
      joinerMaxStallMs: round(jd.maxMs, 0),
      writerMaxStallMs: round(wd.maxMs, 0),
    };
  } finally {
    await Promise.all(workers.map((x) => x.stop()));
    rmSync(env.BENCH_REGISTRY, { recursive: true, force: true });
  }
}

// --- report ---

async function main() {
  const startedAt = new Date();
  noteLoad();
  const acks = PARTS.has("acks") ? await acksPart() : [];
  const liveness = PARTS.has("liveness") ? await livenessPart() : undefined;
  const floods = PARTS.has("flood") ? await floodPart() : undefined;
  const catchup = PARTS.has("catchup") ? await catchUpPart() : undefined;

  const stats = (values: number[]) =>
    values.length ? `${pct(values, 50)} / ${Math.max(...values)} (${values.length} runs)` : "—";
  const lines = [
    `# Failure and acknowledgement figures (gossip mode), ${startedAt.toISOString()}`,
    "",
    `Machine: ${os.cpus().length} cores shared with other developers' test runs, load average ${Math.min(...loads)}–${Math.max(...loads)} during the run (samples: ${loads.join(", ")}), Node ${process.version}, loopback only.`,
    "",
  ];
  if (acks.length) {
    const median = (copies: number, pick: (r: AckRound) => number) =>
      pct(acks.filter((r) => r.copies === copies).map(pick), 50);
    // each round of ACK_COPIES=2 against the ACK_COPIES=1 round next to it (same moments of load)
    const pairs = Array.from({ length: ROUNDS }, (_, r) => [acks[2 * r]!, acks[2 * r + 1]!]).map((pair) => ({
      one: pair.find((x) => x.copies === 1)!,
      two: pair.find((x) => x.copies === 2)!,
    }));
    const ratio = (pick: (r: AckRound) => number) =>
      round(
        pct(
          pairs.map((p) => pick(p.two) / pick(p.one)),
          50,
        ),
        2,
      );
    lines.push(
      `## 1. Replicated acknowledgements (${ROUNDS} rounds of ${SIGN_INS} link confirmations per setting, ${CONCURRENCY} at a time, on two members of one three-node cluster; tables files on)`,
      "",
      "| round | ACK_COPIES | sign-ins/s | p50 ms | p99 ms | max ms | the node's wait for a copy, p50 / p99 ms (last minute) | CPU per sign-in, 3 processes, ms | load |",
      "|---|---|---|---|---|---|---|---|---|",
      ...acks.map(
        (r, i) =>
          `| ${Math.floor(i / 2) + 1} | ${r.copies}${r.copies === 1 ? " (anchor)" : ""} | ${r.perSecond} | ${r.p50} | ${r.p99} | ${r.max} | ${r.copies === 1 ? "—" : `${r.waitP50 ?? "—"} / ${r.waitP99 ?? "—"}`} | ${r.clusterCpuMs} | ${r.load} |`,
      ),
      "",
      `Medians over the rounds, ACK_COPIES=2 vs ACK_COPIES=1: ${median(2, (r) => r.perSecond)} vs ${median(1, (r) => r.perSecond)} sign-ins/s; p99 ${median(2, (r) => r.p99)} vs ${median(1, (r) => r.p99)} ms; CPU per sign-in ${median(2, (r) => r.clusterCpuMs)} vs ${median(1, (r) => r.clusterCpuMs)} ms. Median of the paired ratios (each ACK_COPIES=2 round over the ACK_COPIES=1 round beside it): sign-ins/s ${ratio((r) => r.perSecond)}×, p99 ${ratio((r) => r.p99)}×, CPU per sign-in ${ratio((r) => r.clusterCpuMs)}×. Answers that timed out waiting for a copy: ${acks.filter((r) => r.copies === 2).at(-1)?.timedOut ?? 0}.`,
      "",
    );
  }
  if (liveness) {
    lines.push(
      "## 2. Failure seen (a peer shown down on another node's /cluster.json, polled every 10 ms)",
      "",
      `Anchor: the silence limit ${liveness.downAfterMs} ms, heartbeats every ${liveness.heartbeatMs} ms (designed bound for a frozen peer ≈ ${liveness.downAfterMs + liveness.heartbeatMs} ms; before this change ≥ 20 000 ms, libp2p's ping floor). Goal ≤ 2000 ms.`,
      "",
      "| event | shown, p50 / max ms |",
      "|---|---|",
      `| SIGKILL (the connection closes) → down | ${stats(liveness.killMs)} |`,
      `| SIGSTOP (connection open, no answers) → down | ${stats(liveness.freezeMs)} |`,
      `| SIGCONT → up again, same connection | ${stats(liveness.thawMs)} |`,
      "",
    );
  }
  if (floods) {
    lines.push(
      "## 3. A member joins through a flood (64 keyless connections from 127.0.0.20–29, 24 bytes each, then stalled)",
      "",
      "| join (one dial: pnet, noise, yamux) | p50 / max ms |",
      "|---|---|",
      `| known member (127.0.0.1), no flood (anchor) | ${stats(floods.calmMs)} |`,
      `| known member (127.0.0.1), during the flood | ${stats(floods.knownMs)} |`,
      `| never-seen member (127.0.0.3+), during the flood | ${stats(floods.strangerMs)} |`,
      "",
      `Goal ≤ 2000 ms. Flood connections held off by the gate over the run: ${Object.entries(floods.refused)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ")}.`,
      "",
    );
  }
  if (catchup) {
    lines.push(
      `## 4. A catch-up of ${catchup.users} users with heartbeats running (in-process worker nodes)`,
      "",
      "| joiner ready ms | catch-up failures | peers marked down: serving node / joiner | longest event-loop stall: serving / joiner ms |",
      "|---|---|---|---|",
      `| ${catchup.readyMs} | ${catchup.catchUpFailures} | ${catchup.writerPeersDown} / ${catchup.joinerPeersDown} | ${catchup.writerMaxStallMs} / ${catchup.joinerMaxStallMs} |`,
      "",
      "A peer is marked down after its silence limit; a stall longer than that on the serving node would show here as a down mark (and an up mark after), never as a failed catch-up: down does not cut the connection.",
      "",
    );
  }
  const table = lines.join("\n");
  console.log(`\n${table}`);
  writeResults("faults", startedAt, table, { startedAt, loads, acks, liveness, floods, catchup });
}

main()
  .catch((error) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(() => {
    killAllWorkers();
  });
