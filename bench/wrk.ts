/**
 * One bounded wrk run against a server process of a bench, with the server's CPU per answer
 * beside the requests per second (steadier on a machine others share). wrk comes from Debian:
 * `apt-get install -y wrk`.
 */
import { spawn, spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim() || 100);

/** user + system CPU of a process so far, in ms (Linux /proc). */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
}

export interface WrkResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** answers that were not 2xx/3xx, and socket errors */
  non2xx: number;
  /** server CPU (user + system) per answer, µs: steadier than req/s on a machine others share */
  cpuUs: number;
}

export interface WrkRun {
  /** the server process whose CPU is measured */
  pid: number;
  url: string;
  method: string;
  headers: Record<string, string>;
  seconds: number;
  connections: number;
}

/** One bounded wrk run; a Lua script sets the method, headers and prints latency percentiles. */
export async function runWrk({ pid, url, method, headers, seconds, connections }: WrkRun): Promise<WrkResult> {
  const script = path.join(tmpdir(), `bench-wrk-${process.pid}.lua`);
  writeFileSync(
    script,
    [
      `wrk.method = "${method}"`,
      ...Object.entries(headers).map(([k, v]) => `wrk.headers["${k}"] = "${v.replace(/"/g, '\\"')}"`),
      `done = function(summary, latency, requests)`,
      `  io.write(string.format("BENCH %d %d %f %f %d\\n", summary.requests, summary.duration,`,
      `    latency:percentile(50) / 1000, latency:percentile(99) / 1000,`,
      `    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))`,
      `end`,
    ].join("\n"),
  );
  const cpuBefore = cpuMs(pid);
  // asynchronous on purpose: a blocked event loop here would leave fetch's idle sockets stale
  const proc = spawn("wrk", ["-t1", `-c${connections}`, `-d${seconds}s`, "--timeout", "5s", "-s", script, url], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  proc.stdout.on("data", (c: Buffer) => (out += c.toString()));
  proc.stderr.on("data", (c: Buffer) => (out += c.toString()));
  const killer = setTimeout(() => proc.kill("SIGKILL"), (seconds + 30) * 1000);
  await new Promise<void>((resolve) => {
    proc.on("close", () => resolve());
    proc.on("error", (error) => {
      out += String(error);
      resolve();
    });
  });
  clearTimeout(killer);
  const cpuUsed = cpuMs(pid) - cpuBefore;
  const line = /BENCH (\d+) (\d+) ([\d.]+) ([\d.]+) (\d+)/.exec(out);
  if (!line) throw new Error(`wrk gave no figures (is it installed? apt-get install -y wrk):\n${out}`);
  return {
    rps: Number(line[1]) / (Number(line[2]) / 1e6),
    p50Ms: Number(line[3]),
    p99Ms: Number(line[4]),
    non2xx: Number(line[5]),
    cpuUs: (cpuUsed * 1000) / Number(line[1]),
  };
}

/** The mean of several runs of one endpoint (req/s and CPU averaged; the worst p50/p99). */
export function meanOf(runs: WrkResult[]): WrkResult {
  return {
    rps: runs.reduce((a, r) => a + r.rps, 0) / runs.length,
    p50Ms: Math.max(...runs.map((r) => r.p50Ms)),
    p99Ms: Math.max(...runs.map((r) => r.p99Ms)),
    non2xx: runs.reduce((a, r) => a + r.non2xx, 0),
    cpuUs: runs.reduce((a, r) => a + r.cpuUs, 0) / runs.length,
  };
}
