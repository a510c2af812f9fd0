/**
 * npm run bench:webhooks — what signed webhooks cost a sign-in, figures not a test: email sign-ins
 * per second and their latency on one real server process (the built server, its tables file on),
 * with WEBHOOK_URLS pointing at a real receiver process (which checks every signature) beside the
 * same server without webhooks, in interleaved rounds of the same run. With webhooks on, each
 * sign-in of a new address writes two events (user.created, session.created) in its commit and the
 * node delivers them beside the requests; the figures also give how long after the last sign-in the
 * receiver had every event, and the event → arrival lag.
 * Bounded: fixed counts, every wait has a deadline. Writes bench/results/webhooks-<time>.{md,json}.
 */
import { randomBytes } from "node:crypto";
import {} from "node:fs";
import os from "node:os";
import { startNode, stopAllNodes } from "../tests/support/node";
import { TestSmtpServer } from "../tests/support/smtp";
import { waitFor } from "../tests/support/wait";
import { killAllWorkers, spawnWorker, type Msg } from "./ipc";
import { cpuMs } from "./proc";
import { confirmSignIns, pct, round, signInBenchEnv } from "./sign-ins";
import { writeResults } from "./results";

const SIGN_INS = Number(process.env.BENCH_SIGN_INS ?? 300);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
/** extra node flags for the server, e.g. BENCH_NODE_OPTIONS="--cpu-prof --cpu-prof-dir=/tmp/prof" */
const NODE_OPTIONS = process.env.BENCH_NODE_OPTIONS;

type Stats = Msg & {
  byType: Record<string, number>;
  badSignatures: number;
  duplicates: number;
  emails: string[];
  lags: number[];
  lastAt: number;
};

interface RoundResult {
  webhooks: "off" | "on";
  round: number;
  signIns: number;
  perSecond: number;
  p50: number;
  p99: number;
  max: number;
  /** with webhooks on: events the receiver verified, by type */
  received: Record<string, number>;
  badSignatures: number;
  duplicates: number;
  /** the server's CPU per sign-in: link request, confirmation and (webhooks on) the deliveries of its events */
  cpuPerSignInMs: number;
  /** last sign-in answered → the receiver had every event, ms */
  drainMs: number | null;
  lagP50: number | null;
  lagP99: number | null;
}

async function main() {
  const startedAt = new Date();
  const loadAtStart = os.loadavg();
  console.log(
    `bench:webhooks on ${startedAt.toISOString()}: ${ROUNDS} rounds of ${SIGN_INS} sign-ins, ${CONCURRENCY} at a time`,
  );
  const secret = `whsec_${randomBytes(32).toString("base64")}`;
  const smtp = await new TestSmtpServer().start();
  const receiver = spawnWorker("bench/webhook-receiver.ts", { BENCH_WEBHOOK_SECRET: secret });
  const results: RoundResult[] = [];
  try {
    const { url } = (await receiver.next("started", 60_000, true)) as Msg & { url: string };
    for (let n = 1; n <= ROUNDS; n++) {
      for (const mode of ["off", "on"] as const) {
        await receiver.ask("reset");
        const node = await startNode({
          env: {
            ...signInBenchEnv(smtp),
            ...(mode === "on" ? { WEBHOOK_URLS: url, WEBHOOK_SECRET: secret } : {}),
            NODE_OPTIONS,
          },
        });
        const cpuBefore = cpuMs(node.proc.pid!);
        const f = await confirmSignIns(node, smtp, { count: SIGN_INS, concurrency: CONCURRENCY, tag: `hooks-${mode}` });
        const answeredAt = Date.now();
        let stats = await receiver.ask<Stats>("stats");
        if (mode === "on") {
          stats = await waitFor(
            `the receiver to hold ${SIGN_INS} session.created events`,
            async () => {
              const s = await receiver.ask<Stats>("stats");
              return (s.byType["session.created"] ?? 0) >= SIGN_INS && (s.byType["user.created"] ?? 0) >= SIGN_INS
                ? s
                : undefined;
            },
            120_000,
            20,
          );
          const created = new Set(stats.emails);
          const missing = f.emails.filter((e) => !created.has(e));
          if (missing.length > 0) throw new Error(`no user.created for ${missing.length} sign-ins, e.g. ${missing[0]}`);
        } else if (Object.keys(stats.byType).length > 0) {
          throw new Error(`a node without webhooks delivered ${JSON.stringify(stats.byType)}`);
        }
        const cpuPerSignInMs = (cpuMs(node.proc.pid!) - cpuBefore) / f.signIns;
        await node.stop();
        const lags = [...stats.lags].sort((a, b) => a - b);
        results.push({
          webhooks: mode,
          round: n,
          signIns: f.signIns,
          perSecond: f.perSecond,
          p50: f.p50,
          p99: f.p99,
          max: f.max,
          cpuPerSignInMs: round(cpuPerSignInMs, 2),
          received: stats.byType,
          badSignatures: stats.badSignatures,
          duplicates: stats.duplicates,
          drainMs: mode === "on" ? Math.max(0, stats.lastAt - answeredAt) : null,
          lagP50: lags.length ? round(pct(lags, 50)) : null,
          lagP99: lags.length ? round(pct(lags, 99)) : null,
        });
        console.log(`  round ${n}, webhooks ${mode}: ${f.perSecond} sign-ins/s`);
      }
    }
  } finally {
    await receiver.stop();
    await stopAllNodes();
    await smtp.stop();
  }

  const loadAtEnd = os.loadavg();
  const mean = (mode: "off" | "on", pick: (r: RoundResult) => number) => {
    const values = results.filter((r) => r.webhooks === mode).map(pick);
    return round(values.reduce((a, b) => a + b, 0) / values.length);
  };
  const summary = (mode: "off" | "on") => ({
    perSecond: mean(mode, (r) => r.perSecond),
    p99: mean(mode, (r) => r.p99),
    cpu: mean(mode, (r) => r.cpuPerSignInMs),
  });
  const off = summary("off");
  const on = summary("on");
  const load = (l: number[]) => l.map((x) => x.toFixed(1)).join(" ");
  const dash = (n: number | null) => (n === null ? "—" : String(n));
  const report = [
    `# Webhooks benchmark, ${startedAt.toISOString()}`,
    "",
    `Machine: ${os.cpus().length} cores, Node ${process.version}, loopback only; one server process (\`build/node/index.js\`, tables files on) per round, a receiver process checking every signature, SMTP in the bench process.`,
    `Load average (1, 5, 15 min) at the start: ${load(loadAtStart)}; at the end: ${load(loadAtEnd)} — the machine is shared: compare inside this run.`,
    "",
    `## Sign-ins (${SIGN_INS} link confirmations per round, ${CONCURRENCY} at a time; each writes user, address claim, session, link use, and with webhooks on two events)`,
    "",
    "| round | webhooks | sign-ins/s | p50 ms | p99 ms | max ms | server CPU per sign-in, ms | events verified by the receiver | bad signatures | duplicates | last answer → every event received, ms | event → arrival p50 / p99 ms |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ...results.map(
      (r) =>
        `| ${r.round} | ${r.webhooks === "off" ? "off (anchor)" : "on"} | ${r.perSecond} | ${r.p50} | ${r.p99} | ${r.max} | ${r.cpuPerSignInMs} | ${
          Object.entries(r.received)
            .map(([t, n]) => `${t} ${n}`)
            .join(", ") || "none"
        } | ${r.badSignatures} | ${r.duplicates} | ${dash(r.drainMs)} | ${dash(r.lagP50)} / ${dash(r.lagP99)} |`,
    ),
    "",
    `Means over ${ROUNDS} interleaved rounds: **${on.perSecond} sign-ins/s with webhooks on vs ${off.perSecond} off** (${round((on.perSecond / off.perSecond) * 100, 0)} % of the anchor); p99 ${on.p99} ms vs ${off.p99} ms; server CPU per sign-in (link request, confirmation and, on, delivering its two events) ${on.cpu} ms vs ${off.cpu} ms.`,
    "",
  ].join("\n");
  console.log(`\n${report}`);
  writeResults("webhooks", startedAt, report, {
    startedAt,
    signIns: SIGN_INS,
    concurrency: CONCURRENCY,
    loadAtStart,
    loadAtEnd,
    results,
  });
}

main()
  .catch(async (error) => {
    console.error(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    killAllWorkers();
    await stopAllNodes();
    process.exitCode = 1;
  })
  .finally(() => setTimeout(() => process.exit(), 500).unref());
