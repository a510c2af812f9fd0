// Preload for profiling stalls (node --import=./bench/stall-watch.mjs): a 5 ms timer that writes a
// line to stderr for every gap over STALL_WATCH_MS (default 50) between its ticks, with the gap's
// bounds on the monotonic clock in µs (the clock of --cpu-prof's timestamps) and in ms since the
// process started (the clock of --trace-gc's lines), and from the kernel's schedstat of the main
// thread how much of the gap it ran on a CPU and how long it waited, runnable, for one.
import { readFileSync, writeSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { isMainThread } from "node:worker_threads";

if (isMainThread) {
  const limit = Number(process.env.STALL_WATCH_MS ?? 50);
  const file = `/proc/self/task/${process.pid}/schedstat`;
  const sched = () => {
    try {
      const [run, wait] = readFileSync(file, "utf8").split(" ");
      return [Number(run) / 1e6, Number(wait) / 1e6];
    } catch {
      return [NaN, NaN];
    }
  };
  let last = process.hrtime.bigint();
  let [run0, wait0] = sched();
  setInterval(() => {
    const now = process.hrtime.bigint();
    const [run, wait] = sched();
    const gapMs = Number(now - last) / 1e6 - 5;
    if (gapMs > limit) {
      const since = performance.now();
      writeSync(
        2,
        `stall-watch: ${gapMs.toFixed(0)} ms from ${(since - gapMs - 5).toFixed(0)} ms to ${since.toFixed(0)} ms (µs ${last / 1000n}..${now / 1000n}) on-cpu ${(run - run0).toFixed(0)} ms, runnable-waiting ${(wait - wait0).toFixed(0)} ms\n`,
      );
    }
    last = now;
    run0 = run;
    wait0 = wait;
  }, 5).unref();
}
