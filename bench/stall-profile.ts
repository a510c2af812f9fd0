/**
 * Attribute stalls to code: reads a --cpu-prof profile and the stall-watch lines of the same
 * process (bench/stall-watch.mjs) and prints, per stall, where its samples were: the share of GC,
 * the functions with most self time, and the functions on most stacks (inclusive).
 * Usage: tsx bench/stall-profile.ts <file.cpuprofile> <log with stall-watch lines> [top=12]
 */
import { readFileSync } from "node:fs";
import path from "node:path";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
const [profFile, logFile, topArg] = process.argv.slice(2);
if (!profFile || !logFile) throw new Error("usage: <file.cpuprofile> <log> [top]");
const top = Number(topArg ?? 12);
const prof = JSON.parse(readFileSync(profFile, "utf8")) as {
  nodes: Node[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
};
const byId = new Map<number, Node>();
const parent = new Map<number, number>();
for (const n of prof.nodes) byId.set(n.id, n);
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const label = (n: Node) =>
  `${n.callFrame.functionName || "(anonymous)"} ${n.callFrame.url ? `${path.basename(n.callFrame.url)}:${n.callFrame.lineNumber + 1}` : ""}`.trim();
const times: number[] = [];
let t = prof.startTime;
for (const d of prof.timeDeltas) times.push((t += d));

const stalls = [
  ...readFileSync(logFile, "utf8").matchAll(
    /stall-watch: (\d+) ms from (\d+) ms to (\d+) ms \(µs (\d+)\.\.(\d+)\)(?: on-cpu (\d+) ms, runnable-waiting (\d+) ms)?/g,
  ),
].map((m) => ({ ms: Number(m[1]), fromMs: Number(m[2]), from: Number(m[4]), to: Number(m[5]), cpu: m[6], wait: m[7] }));
console.log(`${stalls.length} stalls in ${logFile}; profile ${((prof.endTime - prof.startTime) / 1e6).toFixed(1)} s`);
for (const s of stalls) {
  if (s.to < prof.startTime || s.from > prof.endTime) continue;
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < prof.samples.length; i += 1) {
    if (times[i]! < s.from || times[i]! > s.to) continue;
    const dt = (prof.timeDeltas[i + 1] ?? 0) / 1000;
    total += dt;
    let id: number | undefined = prof.samples[i]!;
    const leaf = byId.get(id)!;
    self.set(label(leaf), (self.get(label(leaf)) ?? 0) + dt);
    const seen = new Set<string>();
    while (id !== undefined) {
      const l = label(byId.get(id)!);
      if (!seen.has(l)) {
        seen.add(l);
        incl.set(l, (incl.get(l) ?? 0) + dt);
      }
      id = parent.get(id);
    }
  }
  const fmt = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, v]) => `    ${v.toFixed(1).padStart(7)} ms  ${k}`)
      .join("\n");
  console.log(
    `\n== stall ${s.ms} ms at ${(s.fromMs / 1000).toFixed(2)} s (sampled ${total.toFixed(0)} ms; on-cpu ${s.cpu ?? "?"} ms, runnable-waiting ${s.wait ?? "?"} ms)\n  self:\n${fmt(self)}\n  inclusive:\n${fmt(incl)}`,
  );
}
