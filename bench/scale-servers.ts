/**
 * bench:scale, the product at N users: real server processes (`node build/node/index.js`, the
 * app's own stores, tables files on) holding rows as email sign-ins write them. For each N:
 *  1. the writer (bench/scale-seed.ts) writes N users through the app's stores into a DATA_DIR;
 *  2. a server restarts on that DATA_DIR: spawn → serving (`/healthz`), beside the same server on
 *     an empty DATA_DIR (the anchor), and what it holds per user;
 *  3. a second server joins it on an empty DATA_DIR: spawn → `/readyz`, the longest event-loop
 *     stall on the joiner and on the server it pulls from (`nodejs_eventloop_lag_max_seconds`
 *     from their own /metrics, reset when the join begins), and what the joiner holds per user.
 * Heap per user = (JS heap + external memory, after a full GC, read through the inspector) over N,
 * less the same server's figure with no users. Anchors from the same run: the rows as wire JSON
 * and JSON.parse of them (the writer measures them), and the empty start.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import path from "node:path";
import { freePort } from "../tests/support/ports";
import { waitFor } from "../tests/support/wait";
import { heldBy } from "./inspector";
import { ROOT } from "./ipc";

export interface WriterFigures {
  users: number;
  rows: number;
  writeMs: number;
  heapPerUser: number;
  externalPerUser: number;
  wireBytesPerUser: number;
  parseMs: number;
  fileBytes: number;
}

export interface ServersRow {
  users: number;
  writer: WriterFigures;
  load: { start: number; end: number };
  emptyStartMs: number;
  restart: {
    serveMs: number;
    readMs: number;
    readCpuMs: number;
    restoreStallMs: number;
    heapPerUser: number;
    externalPerUser: number;
  };
  join: {
    readyMs: number;
    completeAtReady: boolean;
    recordsPulled: number;
    catchUpFailures: number;
    joinerStallMs: number;
    holderStallMs: number;
    /** an idle Node process on the same machine over the same window: what the scheduler alone costs */
    idleStallMs: number;
    heapPerUser: number;
    externalPerUser: number;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** the event-loop timer of the servers' /metrics (server/metrics.ts: eventLoopMonitoringPrecision) */
const STALL_RESOLUTION_MS = 20;

/** An idle Node process timing its event loop the same way, until stopped: the scheduler's share of a stall. */
function idleProcess(): { stop(): Promise<number> } {
  const proc = spawn(
    process.execPath,
    [
      "-e",
      `const h = require("node:perf_hooks").monitorEventLoopDelay({ resolution: ${STALL_RESOLUTION_MS} }); h.enable();
       process.on("message", () => { process.send(h.max / 1e6); process.exit(0); });`,
    ],
    { stdio: ["ignore", "ignore", "inherit", "ipc"] },
  );
  return {
    stop: () =>
      new Promise((resolve) => {
        proc.once("message", (ms) => resolve(Math.max(0, Number(ms) - STALL_RESOLUTION_MS)));
        proc.send("stop");
      }),
  };
}

/** One real server process, with the inspector on a loopback port. */
export class Server {
  readonly lines: string[] = [];
  exitCode: number | null | undefined;
  private constructor(
    readonly proc: ChildProcess,
    readonly port: number,
    readonly inspectPort: number,
    readonly spawnedAt: number,
  ) {
    const keep = (chunk: Buffer) => {
      for (const line of chunk.toString("utf8").split("\n")) if (line) this.lines.push(line);
      if (this.lines.length > 2_000) this.lines.splice(0, this.lines.length - 2_000);
    };
    proc.stdout?.on("data", keep);
    proc.stderr?.on("data", keep);
    proc.on("exit", (code) => (this.exitCode = code));
  }

  static async start(env: Record<string, string>, dataDir: string, nodeArgs: string[] = []): Promise<Server> {
    const port = await freePort();
    const inspectPort = await freePort();
    const spawnedAt = performance.now();
    const proc = spawn(process.execPath, [`--inspect=127.0.0.1:${inspectPort}`, ...nodeArgs, "build/node/index.js"], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        TMPDIR: process.env.TMPDIR,
        NODE_ENV: "test",
        HOST: "127.0.0.1",
        PORT: String(port),
        APP_URL: `http://127.0.0.1:${port}`,
        DATA_DIR: dataDir,
        CLUSTER_HOST: "127.0.0.1",
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    return new Server(proc, port, inspectPort, spawnedAt);
  }

  fetch(pathname: string): Promise<Response> {
    return fetch(`http://127.0.0.1:${this.port}${pathname}`);
  }

  /** ms from spawn until `pathname` answers 200 (polled every 20 ms). */
  async until(pathname: string, deadlineMs: number): Promise<number> {
    await waitFor(
      `the server on ${this.port} to answer ${pathname} with 200`,
      async () => {
        if (this.exitCode !== undefined)
          throw new Error(`server exited ${this.exitCode}:\n${this.lines.slice(-20).join("\n")}`);
        return (await this.fetch(pathname)).status === 200;
      },
      deadlineMs,
      20,
    );
    return performance.now() - this.spawnedAt;
  }

  event(msg: string): Record<string, unknown> | undefined {
    for (const line of this.lines) {
      if (!line.includes(msg)) continue;
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        // not a log line
      }
    }
    return undefined;
  }

  /**
   * The longest event-loop stall since the last scrape of /metrics (which resets it), ms: the
   * longest gap between the server's 20 ms event-loop timer ticks, less the 20 ms it was due in.
   */
  async longestStallMs(): Promise<number> {
    const text = await (await this.fetch("/metrics")).text();
    const match = /^nodejs_eventloop_lag_max_seconds\s+([\d.e+-]+)/m.exec(text);
    if (!match) throw new Error("no nodejs_eventloop_lag_max_seconds in /metrics");
    return Math.max(0, Number(match[1]) * 1000 - STALL_RESOLUTION_MS);
  }

  async tables(): Promise<Record<string, number>> {
    return ((await (await this.fetch("/cluster.json")).json()) as { tables: Record<string, number> }).tables;
  }

  async counters(): Promise<{ recordsPulled: number; catchUpFailures: number }> {
    return (
      (await (await this.fetch("/cluster.json")).json()) as {
        counters: { recordsPulled: number; catchUpFailures: number };
      }
    ).counters;
  }

  async stop(): Promise<void> {
    if (this.exitCode !== undefined) return;
    const exited = new Promise((r) => this.proc.once("exit", r));
    this.proc.kill("SIGTERM");
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), 30_000);
    await exited;
    clearTimeout(timer);
  }
}

const running = new Set<Server>();

export function killServers(): void {
  for (const s of running) s.proc.kill("SIGKILL");
  running.clear();
}

export async function started(env: Record<string, string>, dataDir: string, nodeArgs: string[] = []): Promise<Server> {
  const server = await Server.start(env, dataDir, nodeArgs);
  running.add(server);
  server.proc.once("exit", () => running.delete(server));
  return server;
}

/** Write `users` users into `dataDir` through the app's stores, in a process of their own (bench/scale-seed.ts). */
export function seed(dataDir: string, clusterName: string, users: number): Promise<WriterFigures> {
  return new Promise((resolve, reject) => {
    const proc = spawn(
      process.execPath,
      ["--expose-gc", "--import", "tsx", "bench/scale-seed.ts", dataDir, clusterName, String(users)],
      { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] },
    );
    let out = "";
    proc.stdout.on("data", (chunk: Buffer) => (out += chunk.toString("utf8")));
    proc.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`the writer exited with ${code}`));
      try {
        resolve(JSON.parse(out.trim().split("\n").pop()!) as WriterFigures);
      } catch (error) {
        reject(error as Error);
      }
    });
  });
}

const perUser = (bytes: number, baseline: number, users: number) => (bytes - baseline) / users;

/** Writer, restart and join at `users` users; every wait has a deadline and every process is stopped. */
export async function measureServers(users: number, log: (line: string) => void): Promise<ServersRow> {
  const loadStart = loadavg()[0]!;
  const clusterName = `scale-${randomBytes(4).toString("hex")}`;
  const registry = mkdtempSync(path.join(tmpdir(), "pwdless-bench-reg-"));
  const dirs = ["writer", "empty", "joiner"].map((name) => mkdtempSync(path.join(tmpdir(), `pwdless-bench-${name}-`)));
  const [writerDir, emptyDir, joinerDir] = dirs as [string, string, string];
  const env = {
    CLUSTER_NAME: clusterName,
    SECRET_KEY_BASE: randomBytes(32).toString("base64url"),
    CLUSTER_DISCOVERY: "local",
    CLUSTER_REGISTRY_DIR: registry,
  };
  const deadline = Math.max(120_000, (users / 100_000) * 60_000);
  try {
    const writer = await seed(writerDir, clusterName, users);
    log(`  ${users} users written (${(writer.writeMs / 1000).toFixed(1)} s)`);

    // the anchor: the same server on an empty DATA_DIR, alone (its own cluster), and what it holds
    const empty = await started({ ...env, CLUSTER_NAME: `${clusterName}-empty`, CLUSTER_DISCOVERY: "none" }, emptyDir);
    const emptyStartMs = await empty.until("/healthz", deadline);
    const baseline = await heldBy(empty.inspectPort);
    await empty.stop();

    const holder = await started(env, writerDir);
    const serveMs = await holder.until("/healthz", deadline);
    const restored = holder.event("cluster: tables restored from the file") ?? {};
    const holderHeld = await heldBy(holder.inspectPort);
    const tables = await holder.tables();
    if (tables.users !== users || tables.sessions !== users || tables.emails !== users) {
      throw new Error(`the restarted server holds ${JSON.stringify(tables)}, not ${users} users`);
    }
    log(`  restart from its own files: ${(serveMs / 1000).toFixed(2)} s`);

    await holder.longestStallMs(); // resets the holder's figure: the join starts now
    const idle = idleProcess();
    const joiner = await started(env, joinerDir);
    const readyMs = await joiner.until("/readyz", deadline * 3);
    const atReady = await joiner.tables();
    const completeAtReady = atReady.users === users && atReady.sessions === users && atReady.emails === users;
    await waitFor(
      `the joiner to hold ${users} users`,
      async () => {
        const t = await joiner.tables();
        return t.users === users && t.sessions === users && t.emails === users;
      },
      deadline,
      200,
    );
    const holderStallMs = await holder.longestStallMs();
    const joinerStallMs = await joiner.longestStallMs();
    const idleStallMs = await idle.stop();
    const counters = await joiner.counters();
    const joinerHeld = await heldBy(joiner.inspectPort);
    log(`  join: ${(readyMs / 1000).toFixed(2)} s`);
    await joiner.stop();
    await holder.stop();
    return {
      users,
      writer,
      load: { start: loadStart, end: loadavg()[0]! },
      emptyStartMs,
      restart: {
        serveMs,
        readMs: Number(restored.ms ?? NaN),
        readCpuMs: Number(restored.cpuMs ?? NaN),
        restoreStallMs: Number(restored.stallMs ?? NaN),
        heapPerUser: perUser(holderHeld.heapUsed + holderHeld.external, baseline.heapUsed + baseline.external, users),
        externalPerUser: perUser(holderHeld.external, baseline.external, users),
      },
      join: {
        readyMs,
        completeAtReady,
        recordsPulled: counters.recordsPulled,
        catchUpFailures: counters.catchUpFailures,
        joinerStallMs,
        holderStallMs,
        idleStallMs,
        heapPerUser: perUser(joinerHeld.heapUsed + joinerHeld.external, baseline.heapUsed + baseline.external, users),
        externalPerUser: perUser(joinerHeld.external, baseline.external, users),
      },
    };
  } finally {
    killServers();
    await sleep(200);
    for (const dir of [...dirs, registry]) rmSync(dir, { recursive: true, force: true });
  }
}

const s = (ms: number) => (ms / 1000).toFixed(2);
const b = (n: number) => n.toFixed(0);

/** The figures of one N, each beside its anchor and its goal. */
export function serversTable(rows: ServersRow[]): string[] {
  const out: string[] = [];
  for (const r of rows) {
    const joinGoal = r.users >= 1_000_000 ? 15_000 : r.users >= 100_000 ? 1_500 : undefined;
    const met = (value: number, goal: number | undefined) =>
      goal === undefined ? "" : value <= goal ? " (met)" : " (**not met**)";
    out.push(
      `### ${r.users.toLocaleString("en")} users = ${r.writer.rows.toLocaleString("en")} rows (load average ${r.load.start.toFixed(1)} → ${r.load.end.toFixed(1)})`,
      "",
      "| measure | this run | anchor, same run | goal |",
      "|---|---|---|---|",
      `| a node joins: spawn → \`/readyz\` | **${s(r.join.readyMs)} s**${r.join.completeAtReady ? "" : " (not all rows at ready)"} | JSON.parse of the same rows: ${s(r.writer.parseMs)} s | ${joinGoal ? `≤ ${s(joinGoal)} s${met(r.join.readyMs, joinGoal)}` : "—"} |`,
      `| longest event-loop stall while it joins: joiner / serving holder | **${b(r.join.joinerStallMs)} / ${b(r.join.holderStallMs)} ms** | an idle Node process, same window: ${b(r.join.idleStallMs)} ms | ≤ 50 ms${met(Math.max(r.join.joinerStallMs, r.join.holderStallMs), 50)} |`,
      `| restart from its own files: spawn → serving (\`/healthz\`) | **${s(r.restart.serveMs)} s** (files read in ${s(r.restart.readMs)} s, CPU ${s(r.restart.readCpuMs)} s; longest stall meanwhile ${b(r.restart.restoreStallMs)} ms) | empty DATA_DIR: ${s(r.emptyStartMs)} s; JSON.parse of the rows: ${s(r.writer.parseMs)} s | ${r.users >= 1_000_000 ? `≤ 5 s${met(r.restart.serveMs, 5_000)}` : "—"} |`,
      `| heap per user (JS heap + external memory): writer / joiner / restored | **${b(r.writer.heapPerUser + r.writer.externalPerUser)} / ${b(r.join.heapPerUser)} / ${b(r.restart.heapPerUser)} B** (of it external ${b(r.writer.externalPerUser)} / ${b(r.join.externalPerUser)} / ${b(r.restart.externalPerUser)}) | wire JSON: ${b(r.writer.wireBytesPerUser)} B | ≤ 400 B${met(Math.max(r.writer.heapPerUser + r.writer.externalPerUser, r.join.heapPerUser, r.restart.heapPerUser), 400)} |`,
      "",
      `Rows pulled by the joiner: ${r.join.recordsPulled.toLocaleString("en")} (failed pulls ${r.join.catchUpFailures}); tables files ${(r.writer.fileBytes / 1e6).toFixed(0)} MB; writing the users through the app's stores took ${s(r.writer.writeMs)} s.`,
      "",
    );
  }
  return out;
}
