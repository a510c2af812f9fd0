/**
 * Benchmark worker processes driven over IPC: spawn, await an event with a deadline, and kill
 * every worker still running when a benchmark fails (so a failed wait never leaves them behind).
 */
import { fork, type ChildProcess } from "node:child_process";
import path from "node:path";

export const ROOT = path.resolve(import.meta.dirname, "..");

export type Msg = { event: string; [k: string]: unknown };

const running = new Set<Worker>();

export class Worker {
  readonly messages: Msg[] = [];
  private waiters: Array<{ test: (m: Msg) => boolean; resolve: (m: Msg) => void }> = [];
  readonly spawnedAt = Date.now();
  listener: ((m: Msg) => void) | undefined;
  exited = false;

  constructor(readonly proc: ChildProcess) {
    running.add(this);
    proc.on("exit", () => {
      this.exited = true;
      running.delete(this);
    });
    proc.on("message", (m: Msg) => {
      this.messages.push(m);
      for (const w of [...this.waiters]) {
        if (w.test(m)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(m);
        }
      }
      this.listener?.(m);
    });
  }

  /** The next message of this event (or one already received, when `seen` allows it). */
  next(event: string, timeoutMs = 120_000, seen = false): Promise<Msg> {
    const earlier = seen ? this.messages.find((m) => m.event === event) : undefined;
    if (earlier) return Promise.resolve(earlier);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${event}`)),
        timeoutMs,
      );
      this.waiters.push({
        test: (m) => m.event === event,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      });
    });
  }

  send(m: object): void {
    if (!this.exited) this.proc.send(m);
  }

  async ask<T extends Msg>(cmd: string, event = cmd, timeoutMs = 120_000): Promise<T> {
    const answer = this.next(event, timeoutMs);
    this.send({ cmd });
    return (await answer) as T;
  }

  async stop(): Promise<Msg | undefined> {
    if (this.exited) return undefined;
    const exited = new Promise((r) => this.proc.once("exit", r));
    const last = this.next("delay", 10_000).catch(() => undefined);
    this.send({ cmd: "stop" });
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), 15_000);
    await exited;
    clearTimeout(timer);
    return last;
  }
}

export function spawnWorker(file: string, env: Record<string, string>, execArgv: string[] = []): Worker {
  const proc = fork(path.join(ROOT, file), [], {
    execArgv: [...execArgv, "--import", "tsx"],
    env: { ...process.env, ...env, BENCH_SPAWNED_AT: String(Date.now()) },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  return new Worker(proc);
}

/** Kill every worker still running (a benchmark failed half-way). */
export function killAllWorkers(): void {
  for (const worker of running) worker.proc.kill("SIGKILL");
  running.clear();
}
