/**
 * npm run bench:forward-auth — figures, not a test: what `GET /auth/forward` costs a node, beside
 * `GET /healthz` on the same node in the same run (goal: ≥ 0.8× its requests/s). One built server
 * process on loopback, tables file on, a session written by a real email sign-in (SMTP); wrk
 * (`apt-get install -y wrk`) runs each endpoint in turn, three rounds interleaved. Bounded: fixed
 * wrk durations and rounds. Run it under `flock /tmp/pwdless-bench.lock`. Prints a table and
 * writes it to bench/results/.
 */
import { readFileSync } from "node:fs";
import { signIn } from "../tests/support/flows";
import { startNode, stopAllNodes, uniqueName } from "../tests/support/node";
import { TestSmtpServer } from "../tests/support/smtp";
import { meanOf, runWrk, type WrkResult } from "./wrk";
import { writeResults } from "./results";

const SECONDS = Number(process.env.BENCH_WRK_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_WRK_CONNECTIONS ?? 8);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** extra node flags for the measured server, e.g. BENCH_NODE_OPTIONS="--cpu-prof --cpu-prof-dir=/tmp/prof" */
const NODE_OPTIONS = process.env.BENCH_NODE_OPTIONS;

const load = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
const fmt = (n: number, digits = 0) => n.toFixed(digits);

async function main() {
  const at = new Date().toISOString();
  const loadAtStart = load();
  const smtp = await new TestSmtpServer().start();
  const lines: string[] = [];
  const figures: Record<string, unknown> = { at, seconds: SECONDS, connections: CONNECTIONS, rounds: ROUNDS };
  try {
    const node = await startNode({
      env: {
        SMTP_URL: smtp.url,
        CLUSTER_NAME: uniqueName("bench-forward"),
        TRUST_PROXY: "127.0.0.1",
        FORWARD_AUTH_HOSTS: "127.0.0.1:8080",
        NODE_OPTIONS,
      },
    });
    const pid = node.proc.pid!;
    const jar = await signIn(node, "bench@example.test", smtp);
    const cookie = { Cookie: jar.header() };
    const check = await node.fetch("/auth/forward", { headers: cookie });
    if (check.status !== 200) throw new Error(`/auth/forward answered ${check.status} to the signed-in cookie`);
    const endpoints = {
      healthz: { path: "/healthz", headers: {} },
      signedIn: { path: "/auth/forward", headers: cookie },
      stranger: { path: "/auth/forward", headers: {} },
      strangerRedirect: {
        path: "/auth/forward?redirect=1",
        headers: { "X-Forwarded-Proto": "http", "X-Forwarded-Host": "127.0.0.1:8080", "X-Forwarded-Uri": "/app?x=1" },
      },
    } as const;
    type Name = keyof typeof endpoints;
    const run = (name: Name) =>
      runWrk({
        pid,
        url: `${node.url}${endpoints[name].path}`,
        method: "GET",
        headers: endpoints[name].headers,
        seconds: SECONDS,
        connections: CONNECTIONS,
      });
    // warm-up: JIT, keep-alive sockets
    for (const name of Object.keys(endpoints) as Name[]) await run(name);
    const runs: Record<Name, WrkResult[]> = { healthz: [], signedIn: [], stranger: [], strangerRedirect: [] };
    const loads: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (const name of Object.keys(endpoints) as Name[]) runs[name].push(await run(name));
      loads.push(load());
    }
    figures.runs = runs;
    figures.load = { atStart: loadAtStart, afterEachRound: loads };
    // the answers were right all along: statuses after the load
    const statuses = {
      signedIn: (await node.fetch("/auth/forward", { headers: cookie })).status,
      stranger: (await node.fetch("/auth/forward")).status,
      strangerRedirect: (
        await node.fetch(endpoints.strangerRedirect.path, { headers: endpoints.strangerRedirect.headers })
      ).status,
    };
    figures.statuses = statuses;
    const healthz = meanOf(runs.healthz);
    // wrk counts every answer that is not 2xx/3xx as an error: for the 401 row that is the answer asked for
    const row = (name: string, r: WrkResult, anchor: string, expected401 = false) =>
      `| ${name} | ${fmt(r.rps)} req/s, p50 ${fmt(r.p50Ms, 2)} / p99 ${fmt(r.p99Ms, 2)} ms, ${fmt(r.cpuUs)} µs CPU/answer${r.non2xx && !expected401 ? `, ${r.non2xx} errors` : ""} | ${anchor} |`;
    const versus = (r: WrkResult) =>
      `**${fmt(r.rps / healthz.rps, 2)}×** /healthz by req/s, **${fmt(healthz.cpuUs / r.cpuUs, 2)}×** by CPU per answer (goal ≥ 0.8×)`;
    const perRound = (name: Name) => runs[name].map((r, i) => fmt(r.rps / runs.healthz[i]!.rps, 2)).join(" / ");
    lines.push(
      `# bench:forward-auth ${at}`,
      "",
      `One node (built server, tables files on), loopback, wrk -t1 -c${CONNECTIONS} -d${SECONDS}s per run, ${ROUNDS} rounds interleaved with /healthz (mean req/s and CPU, worst p50/p99). Load average at start ${loadAtStart}; after each round ${loads.join(" · ")}.`,
      "",
      "| measure | figure | anchor (same run) |",
      "| --- | --- | --- |",
      row("`GET /healthz`", healthz, "the anchor"),
      row(
        "`GET /auth/forward`, signed in (200 + X-Auth-Request-*)",
        meanOf(runs.signedIn),
        `${versus(meanOf(runs.signedIn))}; per round ${perRound("signedIn")}`,
      ),
      row(
        "`GET /auth/forward`, no cookie (401, nginx)",
        meanOf(runs.stranger),
        `${versus(meanOf(runs.stranger))}; per round ${perRound("stranger")}`,
        true,
      ),
      row(
        "`GET /auth/forward?redirect=1`, no cookie (302, Traefik/Caddy)",
        meanOf(runs.strangerRedirect),
        `${versus(meanOf(runs.strangerRedirect))}; per round ${perRound("strangerRedirect")}`,
      ),
      "",
      `Statuses after the load: signed in ${statuses.signedIn}, no cookie ${statuses.stranger}, redirect ${statuses.strangerRedirect}.`,
      "",
    );
  } finally {
    await stopAllNodes();
    await smtp.stop();
  }
  const report = lines.join("\n");
  process.stdout.write(report);
  writeResults("forward-auth", at, report, figures);
}

main().catch(async (error) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  await stopAllNodes();
  process.exit(1);
});
