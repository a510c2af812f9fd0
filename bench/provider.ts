/**
 * npm run bench:provider — figures, not a test: what the OpenID provider's back-channel costs on a
 * real server process with persistence on, each beside `GET /healthz` measured the same way in
 * the same run on the same node:
 *  1. server CPU per authorization code exchange (ID, access and refresh token issued, the code's
 *     single use decided and the rows made durable);
 *  2. refresh-grant requests per second (each a rotation: one use decided, two tokens written),
 *     several token families at once;
 *  3. a code issued on node A exchanged on node B (gossip: B asks A to decide its use).
 * Bounded: fixed counts and durations, every wait with a deadline. Writes bench/results/provider-*.
 * Run it under `flock /tmp/pwdless-bench.lock npm run bench:provider` on a shared machine.
 */
import { readFileSync } from "node:fs";
import { Balancer } from "../tests/support/balancer";
import { clusterEnv } from "../tests/support/cluster";
import { CookieJar } from "../tests/support/cookie-jar";
import { cpuMs } from "./proc";
import { startNode, stopAllNodes, type NodeProcess } from "../tests/support/node";
import { clientsFile, codeFlow, standardClients, token, type Site } from "../tests/support/oidc";
import { TestSmtpServer } from "../tests/support/smtp";
import { waitFor } from "../tests/support/wait";
import { writeResults } from "./results";

const CODES = Number(process.env.BENCH_CODES ?? 120);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4);
const CROSS_CODES = Number(process.env.BENCH_CROSS_CODES ?? 60);
/** extra node flags for the measured servers, e.g. BENCH_NODE_OPTIONS="--cpu-prof --cpu-prof-dir=/tmp/prof" */
const NODE_OPTIONS = process.env.BENCH_NODE_OPTIONS;

const loadavg = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
const percentile = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
const fmt = (n: number, digits = 0) => n.toFixed(digits);

interface Run {
  answers: number;
  seconds: number;
  rps: number;
  cpuUsPerAnswer: number;
  p50Ms: number;
  p99Ms: number;
}

/** `workers` loops calling `step` for `seconds` (or until `limit` answers), with the node's CPU over the run. */
async function run(
  pid: number,
  workers: number,
  step: (worker: number) => Promise<void>,
  seconds: number,
  limit = Infinity,
): Promise<Run> {
  const latencies: number[] = [];
  const cpuBefore = cpuMs(pid);
  const started = performance.now();
  const deadline = started + seconds * 1000;
  let answers = 0;
  let issued = 0;
  await Promise.all(
    Array.from({ length: workers }, async (_, worker) => {
      while (performance.now() < deadline && issued < limit) {
        issued += 1;
        const t = performance.now();
        await step(worker);
        latencies.push(performance.now() - t);
        answers += 1;
      }
    }),
  );
  const wall = (performance.now() - started) / 1000;
  return {
    answers,
    seconds: wall,
    rps: answers / wall,
    cpuUsPerAnswer: ((cpuMs(pid) - cpuBefore) * 1000) / answers,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
  };
}

async function healthz(site: Site): Promise<void> {
  const res = await site.fetch("/healthz");
  if (!res.ok) throw new Error(`/healthz answered ${res.status}`);
  await res.arrayBuffer();
}

/** Codes for the web app, minted ahead by a signed-in browser (each a silent authorization). */
async function mintCodes(site: Site, jar: CookieJar, count: number) {
  const codes: Array<{ code: string; verifier: string; redirectUri: string }> = [];
  for (let i = 0; i < count; i++) codes.push(await codeFlow(site, jar));
  return codes;
}

async function exchange(site: Site, c: { code: string; verifier: string; redirectUri: string }) {
  const answer = await token(site, {
    grant_type: "authorization_code",
    code: c.code,
    code_verifier: c.verifier,
    redirect_uri: c.redirectUri,
  });
  if (answer.status !== 200) throw new Error(`code exchange answered ${answer.status}: ${JSON.stringify(answer.body)}`);
  return answer.body;
}

async function main() {
  const at = new Date().toISOString();
  const loadAtStart = loadavg();
  const smtp = await new TestSmtpServer().start();
  const balancer = await Balancer.start();
  const env = {
    ...clusterEnv(),
    APP_URL: balancer.url,
    SMTP_URL: smtp.url,
    OIDC_PROVIDER_CLIENTS_FILE: clientsFile(standardClients()),
    // codes are minted ahead of the timed exchanges
    OIDC_PROVIDER_CODE_TTL_SECONDS: "600",
    RATE_LIMIT_REQUESTS_PER_IP: "100000",
    RATE_LIMIT_OPENINGS_PER_IP: "100000",
    NODE_OPTIONS,
  };
  const figures: Record<string, unknown> = {
    at,
    loadAtStart,
    codes: CODES,
    seconds: SECONDS,
    concurrency: CONCURRENCY,
  };
  const lines: string[] = [];
  let a: NodeProcess | undefined;
  let b: NodeProcess | undefined;
  try {
    a = await startNode({ env });
    balancer.route(a);
    const viaA = balancer.via(a);
    const pid = a.proc.pid!;
    const jar = new CookieJar();
    await codeFlow(balancer, jar, { email: "bench@example.test", smtp }).then((c) => exchange(viaA, c));

    // 1. CPU per code exchange beside CPU per /healthz, same client, same concurrency
    const codes = await mintCodes(balancer, jar, CODES);
    const refreshTokens = (await Promise.all(codes.slice(0, CONCURRENCY).map((c) => exchange(viaA, c)))).map((b) =>
      String(b.refresh_token),
    );
    await run(pid, CONCURRENCY, () => healthz(viaA), 1); // warm-up
    const health1 = await run(pid, CONCURRENCY, () => healthz(viaA), SECONDS);
    let next = CONCURRENCY;
    const exchanges = await run(
      pid,
      CONCURRENCY,
      () => exchange(viaA, codes[next++]!).then(() => undefined),
      600,
      CODES - CONCURRENCY,
    );

    // 2. refresh-grant req/s: CONCURRENCY families, each rotating its refresh token in turn
    const refresh = async (worker: number) => {
      const answer = await token(viaA, { grant_type: "refresh_token", refresh_token: refreshTokens[worker]! });
      if (answer.status !== 200) throw new Error(`refresh answered ${answer.status}: ${JSON.stringify(answer.body)}`);
      refreshTokens[worker] = String(answer.body.refresh_token);
    };
    const refreshRuns: Run[] = [];
    const healthRuns: Run[] = [health1];
    for (let round = 0; round < 2; round++) {
      refreshRuns.push(await run(pid, CONCURRENCY, refresh, SECONDS));
      healthRuns.push(await run(pid, CONCURRENCY, () => healthz(viaA), SECONDS));
    }
    const mean = (rs: Run[], key: keyof Run) => rs.reduce((s, r) => s + r[key], 0) / rs.length;
    const healthRps = mean(healthRuns, "rps");
    const healthCpu = mean(healthRuns, "cpuUsPerAnswer");
    figures.healthz = healthRuns;
    figures.exchange = exchanges;
    figures.refresh = refreshRuns;

    // 3. a second node: codes issued on A, exchanged on B (B asks A to decide each use)
    const nodeB = await startNode({ env });
    b = nodeB;
    await waitFor("node B ready", async () => (await nodeB.fetch("/readyz")).ok, 30_000);
    const viaB = balancer.via(nodeB);
    const cross = await mintCodes(balancer, jar, CROSS_CODES);
    await exchange(viaB, cross[0]!);
    let crossNext = 1;
    const crossRun = await run(
      b.proc.pid!,
      1,
      () => exchange(viaB, cross[crossNext++]!).then(() => undefined),
      600,
      CROSS_CODES - 1,
    );
    const sameCodes = await mintCodes(balancer, jar, CROSS_CODES);
    let sameNext = 0;
    const sameRun = await run(
      pid,
      1,
      () => exchange(viaA, sameCodes[sameNext++]!).then(() => undefined),
      600,
      CROSS_CODES,
    );
    figures.crossNode = { onB: crossRun, onA: sameRun };

    lines.push(
      `# bench:provider ${at}`,
      "",
      `Real server processes (built server, tables files on), loopback, a Node fetch client with ${CONCURRENCY} requests in flight, /healthz measured the same way in the same run. Load average at start: ${loadAtStart}; at the end: ${loadavg()}.`,
      "",
      "| measure | figure | anchor: `GET /healthz`, same node, same client |",
      "| --- | --- | --- |",
      `| server CPU per authorization code exchange (ID + access + refresh token, single use, durable), ${exchanges.answers} codes | **${fmt(exchanges.cpuUsPerAnswer / 1000, 2)} ms** (p50 ${fmt(exchanges.p50Ms, 1)} / p99 ${fmt(exchanges.p99Ms, 1)} ms) | ${fmt(healthCpu / 1000, 3)} ms CPU per answer: the exchange costs **${fmt(exchanges.cpuUsPerAnswer / healthCpu, 1)}×** |`,
      `| refresh grants (rotation) per second, ${CONCURRENCY} families, ${SECONDS} s × 2 | **${fmt(mean(refreshRuns, "rps"))} req/s**, ${fmt(mean(refreshRuns, "cpuUsPerAnswer") / 1000, 2)} ms CPU per answer (p50 ${fmt(Math.max(...refreshRuns.map((r) => r.p50Ms)), 1)} ms) | ${fmt(healthRps)} req/s: **${fmt(mean(refreshRuns, "rps") / healthRps, 2)}×** by req/s, **${fmt(healthCpu / mean(refreshRuns, "cpuUsPerAnswer"), 2)}×** by CPU per answer |`,
      `| code issued on A exchanged on B (B asks A), one at a time, ${crossRun.answers} codes | p50 **${fmt(crossRun.p50Ms, 1)} ms** / p99 ${fmt(crossRun.p99Ms, 1)} ms; B's CPU ${fmt(crossRun.cpuUsPerAnswer / 1000, 2)} ms per exchange | exchanged on A itself: p50 ${fmt(sameRun.p50Ms, 1)} / p99 ${fmt(sameRun.p99Ms, 1)} ms, ${fmt(sameRun.cpuUsPerAnswer / 1000, 2)} ms CPU |`,
      "",
    );
  } finally {
    // a clean exit writes --cpu-prof profiles
    await Promise.all([a, b].filter((n): n is NodeProcess => n !== undefined).map((n) => n.stop("SIGTERM")));
    await stopAllNodes();
    await balancer.stop();
    await smtp.stop();
  }
  const report = lines.join("\n");
  process.stdout.write(report);
  writeResults("provider", at, report, figures);
}

main().catch(async (error) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  await stopAllNodes();
  process.exit(1);
});
