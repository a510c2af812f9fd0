/**
 * npm run bench:http — figures, not a test: what one node's HTTP answers cost, each beside its
 * anchor measured in the same run on this machine's loopback:
 *  1. `GET /api/me` (Bearer) and `POST /auth/refresh` (cookie) throughput beside `GET /healthz` (wrk);
 *  2. server CPU per complete email sign-in over real SMTP beside CPU per `/healthz` answer;
 *  3. cold start, `npm start`'s server on a current build → `/healthz` 200, beside a bare Node server.
 * Bounded: fixed wrk durations, a fixed number of sign-ins and starts, every wait with a deadline.
 * Prints a table and writes it to bench/results/.
 */
import { spawn } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { CookieJar } from "../tests/support/cookie-jar";
import { accessToken, browse, form, pathOf, signIn } from "../tests/support/flows";
import { ROOT, serverCommand, startNode, stopAllNodes, tempDir, testSecret, uniqueName } from "../tests/support/node";
import { freePort } from "../tests/support/ports";
import { linkIn, TestSmtpServer } from "../tests/support/smtp";
import { waitFor } from "../tests/support/wait";
import { cpuMs, meanOf, runWrk, type WrkResult } from "./wrk";
import { writeResults } from "./results";

const WRK_SECONDS = Number(process.env.BENCH_WRK_SECONDS ?? 5);
const WRK_CONNECTIONS = Number(process.env.BENCH_WRK_CONNECTIONS ?? 8);
const wrk = (pid: number, url: string, method: string, headers: Record<string, string>) =>
  runWrk({ pid, url, method, headers, seconds: WRK_SECONDS, connections: WRK_CONNECTIONS });
const SIGN_INS = Number(process.env.BENCH_SIGN_INS ?? 60);
const STARTS = Number(process.env.BENCH_STARTS ?? 5);
/** how long the idle node's own CPU is measured before the sign-ins */
const IDLE_MS = 5_000;
/** extra node flags for the measured server, e.g. BENCH_NODE_OPTIONS="--cpu-prof --cpu-prof-dir=/tmp/prof" */
const NODE_OPTIONS = process.env.BENCH_NODE_OPTIONS;

/** The whole email sign-in a person does: form, mail, confirm page, confirm, account page. */
async function signInOverSmtp(node: Awaited<ReturnType<typeof startNode>>, smtp: TestSmtpServer, email: string) {
  const jar = new CookieJar();
  const login = await browse(node, jar, "/login");
  if (login.status !== 200) throw new Error(`GET /login answered ${login.status}`);
  await login.text();
  const sent = await browse(node, jar, "/login", form({ email }));
  if (sent.status !== 302) throw new Error(`POST /login answered ${sent.status}`);
  const link = linkIn(await waitFor(`a mail to ${email}`, () => smtp.to(email)[0], 10_000, 5));
  const confirm = await browse(node, jar, pathOf(link));
  if (confirm.status !== 200) throw new Error(`the confirm page answered ${confirm.status}`);
  await confirm.text();
  const done = await browse(node, jar, pathOf(link), { method: "POST" });
  if (done.status !== 302) throw new Error(`confirming answered ${done.status}`);
  const account = await browse(node, jar, "/account");
  if (account.status !== 200) throw new Error(`/account answered ${account.status}`);
  await account.text();
}

/** ms from spawn to the first /healthz 200 (polled every 10 ms, 20 s at most), and the CPU it took. */
async function timeToHealthy(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  port: number,
): Promise<{ wallMs: number; cpuMs: number }> {
  const started = performance.now();
  const proc = spawn(command, args, { cwd: ROOT, env, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  proc.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
  try {
    await waitFor(
      `port ${port} to answer /healthz`,
      async () => {
        if (proc.exitCode !== null) throw new Error(`exited with ${proc.exitCode}: ${stderr}`);
        return (await fetch(`http://127.0.0.1:${port}/healthz`)).ok;
      },
      20_000,
      10,
    );
    return { wallMs: performance.now() - started, cpuMs: cpuMs(proc.pid!) };
  } finally {
    proc.kill("SIGKILL");
    await new Promise((r) => (proc.exitCode !== null ? r(null) : proc.once("exit", r)));
    if (env.DATA_DIR) rmSync(env.DATA_DIR, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (n: number, digits = 0) => n.toFixed(digits);

async function main() {
  const loadAtStart = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  const smtp = await new TestSmtpServer().start();
  const lines: string[] = [];
  const figures: Record<string, unknown> = { at: new Date().toISOString(), wrkSeconds: WRK_SECONDS };
  try {
    const node = await startNode({
      env: {
        SMTP_URL: smtp.url,
        CLUSTER_NAME: uniqueName("bench-http"),
        RATE_LIMIT_REQUESTS_PER_IP: "100000",
        RATE_LIMIT_OPENINGS_PER_IP: "100000",
        // wrk sends the same cookie again and cannot take the refreshed one a browser would: keep
        // the older cookie good for the whole run, or its reuse past the 30 s default ends the
        // session as a theft and the run measures 401s
        REFRESH_REUSE_GRACE_SECONDS: "3600",
        NODE_OPTIONS,
      },
    });
    const pid = node.proc.pid!;
    process.on("exit", () => {
      if (node.exitCode !== undefined && node.exitCode !== 0)
        process.stderr.write(`server log:\n${node.log.slice(-3000)}\n`);
    });
    const jar = await signIn(node, "bench@example.test", smtp);
    const token = await accessToken(node, jar);
    const first = await node.fetch("/api/me", { headers: { Authorization: `Bearer ${token}` } });
    if (first.status !== 200) throw new Error(`/api/me answered ${first.status}`);

    // 1. throughput: each endpoint twice, interleaved with /healthz, on the same node
    const me = { Authorization: `Bearer ${token}` };
    const cookie = { Cookie: jar.header(), "Sec-Fetch-Site": "same-origin" };
    await wrk(pid, `${node.url}/healthz`, "GET", {}); // warm-up: JIT, keep-alive sockets
    await wrk(pid, `${node.url}/api/me`, "GET", me);
    await wrk(pid, `${node.url}/auth/refresh`, "POST", cookie);
    const runs: Record<"healthz" | "apiMe" | "refresh", WrkResult[]> = { healthz: [], apiMe: [], refresh: [] };
    for (let round = 0; round < 2; round++) {
      runs.healthz.push(await wrk(pid, `${node.url}/healthz`, "GET", {}));
      runs.apiMe.push(await wrk(pid, `${node.url}/api/me`, "GET", me));
      runs.refresh.push(await wrk(pid, `${node.url}/auth/refresh`, "POST", cookie));
    }
    const mean = meanOf;
    const healthz = mean(runs.healthz);
    const apiMe = mean(runs.apiMe);
    const refresh = mean(runs.refresh);
    const refused = runs.refresh.reduce((n, r) => n + (r.non2xx ?? 0), 0);
    if (refused > 0) throw new Error(`POST /auth/refresh answered ${refused} non-2xx: not a figure of refreshes`);
    const cpuPerHealthzMs = healthz.cpuUs / 1000;
    figures.throughput = runs;

    // 2. CPU per complete sign-in, over SMTP as in production; an idle node's own CPU (gossip
    // heartbeats, timers) over the same wall time is measured first and shown beside it
    await signInOverSmtp(node, smtp, "warm-up@example.test");
    const idleCpuBefore = cpuMs(pid);
    const idleWallBefore = performance.now();
    await new Promise((r) => setTimeout(r, IDLE_MS));
    const idleCpuPerWallMs = (cpuMs(pid) - idleCpuBefore) / (performance.now() - idleWallBefore);
    const cpuBefore = cpuMs(pid);
    const wallBefore = performance.now();
    for (let i = 0; i < SIGN_INS; i++) await signInOverSmtp(node, smtp, `person-${i}@example.test`);
    const cpuPerSignInMs = (cpuMs(pid) - cpuBefore) / SIGN_INS;
    const wallPerSignInMs = (performance.now() - wallBefore) / SIGN_INS;
    const idlePerSignInMs = idleCpuPerWallMs * wallPerSignInMs;
    figures.signIn = { count: SIGN_INS, cpuPerSignInMs, wallPerSignInMs, cpuPerHealthzMs, idlePerSignInMs };
    await node.stop("SIGTERM"); // a clean exit writes --cpu-prof profiles

    // 3. cold start: the server npm start runs, on the current build, beside a bare Node server
    const env = (port: number): NodeJS.ProcessEnv => ({
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODE_ENV: "test",
      PORT: String(port),
      HOST: "127.0.0.1",
      APP_URL: `http://127.0.0.1:${port}`,
      DATA_DIR: tempDir("bench-start"),
      SECRET_KEY_BASE: testSecret(),
      CLUSTER_NAME: uniqueName("bench-start"),
      CLUSTER_DISCOVERY: "none",
    });
    const bare = `require("node:http").createServer((q,s)=>s.end("ok")).listen(Number(process.env.PORT),"127.0.0.1")`;
    const server = serverCommand();
    const starts: Array<{ wallMs: number; cpuMs: number }> = [];
    const bares: Array<{ wallMs: number; cpuMs: number }> = [];
    for (let i = 0; i < STARTS; i++) {
      const p1 = await freePort();
      bares.push(await timeToHealthy(process.execPath, ["-e", bare], env(p1), p1));
      const p2 = await freePort();
      starts.push(await timeToHealthy(server.command, server.args, env(p2), p2));
    }
    figures.coldStart = { server: starts, bare: bares, command: [server.command, ...server.args].join(" ") };

    const row = (name: string, r: WrkResult, anchor: string) =>
      `| ${name} | ${fmt(r.rps)} req/s, p50 ${fmt(r.p50Ms, 2)} / p99 ${fmt(r.p99Ms, 2)} ms, ${fmt(r.cpuUs)} µs CPU/answer${r.non2xx ? `, ${r.non2xx} errors` : ""} | ${anchor} |`;
    const versus = (r: WrkResult, goal: string) =>
      `**${fmt(r.rps / healthz.rps, 2)}×** /healthz by req/s, **${fmt(healthz.cpuUs / r.cpuUs, 2)}×** by CPU per answer (goal ≥ ${goal})`;
    lines.push(
      `# bench:http ${figures.at as string}`,
      "",
      `One node, loopback, wrk -t1 -c${WRK_CONNECTIONS} -d${WRK_SECONDS}s per run, each endpoint twice interleaved with /healthz (mean req/s, worst p50/p99); ${SIGN_INS} sign-ins; ${STARTS} starts. Load average at start: ${loadAtStart}.`,
      "",
      "| measure | figure | anchor (same run) |",
      "| --- | --- | --- |",
      row("`GET /healthz`", healthz, "the anchor"),
      row("`GET /api/me` (Bearer)", apiMe, versus(apiMe, "0.9×")),
      row("`POST /auth/refresh` (cookie)", refresh, versus(refresh, "0.5×")),
      `| server CPU per complete email sign-in (SMTP; 5 requests + 1 mail) | **${fmt(cpuPerSignInMs, 2)} ms** (wall ${fmt(wallPerSignInMs, 1)} ms); ${fmt(cpuPerSignInMs - idlePerSignInMs, 2)} ms net of the idle node's own | the idle node's own CPU over the same wall time: ${fmt(idlePerSignInMs, 2)} ms; 5 × CPU per /healthz answer = ${fmt(5 * cpuPerHealthzMs, 2)} ms (goal ≤ 5 ms) |`,
      `| cold start → /healthz 200, median of ${STARTS} | **${fmt(median(starts.map((x) => x.wallMs)))} ms** wall, ${fmt(median(starts.map((x) => x.cpuMs)))} ms CPU (\`${[path.basename(server.command), ...server.args].join(" ")}\`) | bare Node HTTP server: ${fmt(median(bares.map((x) => x.wallMs)))} ms wall, ${fmt(median(bares.map((x) => x.cpuMs)))} ms CPU (goal ≤ 800 ms) |`,
      "",
    );
  } finally {
    await stopAllNodes();
    await smtp.stop();
  }
  const report = lines.join("\n");
  process.stdout.write(report);
  writeResults("http", figures.at as string, report, figures);
}

main().catch(async (error) => {
  process.stderr.write(
    `${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n${error instanceof Error && error.cause ? String(error.cause) : ""}\n`,
  );
  await stopAllNodes();
  process.exit(1);
});
