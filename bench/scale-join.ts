/**
 * One join at N users between two real servers, for profiling the stalls (not a figure of the
 * README: bench:scale is). Seeds N users once into a kept directory (reused by later runs), copies
 * it, restarts a server on the copy (the holder), joins a second server on an empty DATA_DIR, and
 * prints the longest stall on each, scraped from their /metrics every 500 ms (a timeline), beside an
 * idle Node process. Extra Node flags for both servers come from BENCH_NODE_ARGS (e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/x --trace-gc`); each server's output goes to <out>/<role>.log.
 * Usage: tsx bench/scale-join.ts [users] [outDir]   (hold flock /tmp/pwdless-bench.lock around it)
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import path from "node:path";
import { waitFor } from "../tests/support/wait";
import { killServers, seed, started, type Server } from "./scale-servers";

const users = Number(process.argv[2] ?? 1_000_000);
const out = process.argv[3] ?? mkdtempSync(path.join(tmpdir(), "pwdless-join-"));
const seedDir = path.join(tmpdir(), `pwdless-join-seed-${users}`);
const clusterName = `join-seed-${users}`;

function logTo(server: Server, file: string) {
  const stream = createWriteStream(file);
  const t0 = performance.now();
  const write = (chunk: Buffer) =>
    stream.write(`[+${(performance.now() - t0).toFixed(0)}ms] ${chunk.toString("utf8")}`);
  server.proc.stdout?.on("data", write);
  server.proc.stderr?.on("data", write);
}

async function main() {
  mkdirSync(out, { recursive: true });
  if (!existsSync(path.join(seedDir, "done"))) {
    rmSync(seedDir, { recursive: true, force: true });
    mkdirSync(seedDir, { recursive: true });
    const w = await seed(seedDir, clusterName, users);
    console.log(`seeded ${users} users in ${(w.writeMs / 1000).toFixed(1)} s`);
    execFileSync("touch", [path.join(seedDir, "done")]);
  }
  const holderDir = mkdtempSync(path.join(tmpdir(), "pwdless-join-holder-"));
  const joinerDir = mkdtempSync(path.join(tmpdir(), "pwdless-join-joiner-"));
  const registry = mkdtempSync(path.join(tmpdir(), "pwdless-join-reg-"));
  execFileSync("cp", ["-r", `${seedDir}/.`, holderDir]);
  rmSync(path.join(holderDir, "done"));
  const env = {
    CLUSTER_NAME: clusterName,
    SECRET_KEY_BASE: randomBytes(32).toString("base64url"),
    CLUSTER_DISCOVERY: "local",
    CLUSTER_REGISTRY_DIR: registry,
    ...(process.env.STALL_WATCH_MS ? { STALL_WATCH_MS: process.env.STALL_WATCH_MS } : {}),
  };
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? "").split(" ").filter(Boolean);
  const load0 = loadavg()[0]!;
  try {
    const holder = await started(env, holderDir, nodeArgs);
    logTo(holder, path.join(out, "holder.log"));
    const serveMs = await holder.until("/healthz", 300_000);
    console.log(`holder serving after ${(serveMs / 1000).toFixed(2)} s`);
    await new Promise((r) => setTimeout(r, 3_000));
    await holder.longestStallMs();
    const joiner = await started(env, joinerDir, nodeArgs);
    logTo(joiner, path.join(out, "joiner.log"));
    const t0 = performance.now();
    const timeline: string[] = [];
    let maxH = 0;
    let maxJ = 0;
    let done = false;
    const poll = (async () => {
      // the stalls scraped every POLL_MS (default: once, at the end, as bench:scale does)
      const every = Number(process.env.POLL_MS ?? 0);
      while (!done) {
        const due = performance.now() + every;
        while (!done && (every === 0 || performance.now() < due)) await new Promise((r) => setTimeout(r, 100));
        const h = await holder.longestStallMs().catch(() => NaN);
        const j = await joiner.longestStallMs().catch(() => NaN);
        if (h > maxH) maxH = h;
        if (j > maxJ) maxJ = j;
        const line = `t=${((performance.now() - t0) / 1000).toFixed(1)}s holder ${h.toFixed(0)} ms joiner ${Number.isNaN(j) ? "—" : j.toFixed(0)} ms`;
        timeline.push(line);
        if (h > 50 || j > 50) console.log(line);
      }
    })();
    const readyMs = await joiner.until("/readyz", 600_000);
    console.log(`joiner ready after ${(readyMs / 1000).toFixed(2)} s`);
    await waitFor(
      "the joiner to hold every user",
      async () => {
        const t = await joiner.tables();
        return t.users === users && t.sessions === users && t.emails === users;
      },
      120_000,
      200,
    );
    await new Promise((r) => setTimeout(r, 2_000));
    done = true;
    await poll;
    console.log(
      `users ${users}: join ${(readyMs / 1000).toFixed(2)} s; longest stall joiner ${maxJ.toFixed(0)} ms, holder ${maxH.toFixed(0)} ms; load ${load0.toFixed(1)} → ${loadavg()[0]!.toFixed(1)}; out ${out}`,
    );
    rmSync(path.join(out, "timeline.txt"), { force: true });
    createWriteStream(path.join(out, "timeline.txt")).end(timeline.join("\n") + "\n");
    await joiner.stop();
    await holder.stop();
  } finally {
    killServers();
    for (const dir of [holderDir, joinerDir, registry]) rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(`failed: ${(error as Error).stack}`);
  killServers();
  process.exitCode = 1;
});
