// A node killed (SIGKILL) in the middle of writing its tables files, again and again: in commits,
// in snapshots, in log rotations. Every start reads what the files hold, and every write durable()
// acknowledged before the kill is there, as acknowledged or newer.
import { fork } from "node:child_process";
import { rmSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ClusterStore, FilePersistence } from "#cluster";
import { ROOT, tempDir } from "../support/node";

const ROUNDS = 6;

/** Run the writer until it has acknowledged writes, kill it after `afterMs`; what it acknowledged. */
function writeAndKill(dir: string, round: number, afterMs: number): Promise<Map<string, number>> {
  return new Promise((resolve, reject) => {
    const child = fork(`${ROOT}/tests/support/crash-writer.ts`, [dir, String(round)], {
      execArgv: ["--import", "tsx"],
      stdio: ["ignore", "ignore", "pipe", "ipc"],
    });
    let stderr = "";
    child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
    const acked = new Map<string, number>();
    child.on("message", (m: { ready?: boolean; acked?: Array<[string, number]> }) => {
      if (m.ready) setTimeout(() => child.kill("SIGKILL"), afterMs);
      for (const [key, n] of m.acked ?? []) acked.set(key, n);
    });
    child.on("exit", (code, signal) => {
      if (signal === "SIGKILL") resolve(acked);
      else reject(new Error(`the writer exited with ${code}: ${stderr}`));
    });
  });
}

async function readBack(dir: string): Promise<Map<string, { round: string; n: number }>> {
  const store = new ClusterStore({ nodeId: "reader" });
  const persistence = new FilePersistence({ dir, clusterName: "crash" });
  const lines: string[] = [];
  await persistence.start({
    store,
    log: { info() {}, warn: (m) => void lines.push(m), error: (m) => void lines.push(m) },
    tombstoneTtlMs: 7 * 86_400_000,
  });
  await persistence.stop();
  return new Map(store.table<{ round: string; n: number }>("rows").scan());
}

describe("tables files killed while being written", () => {
  it("keep every acknowledged write through six SIGKILLs at random moments", async () => {
    const dir = tempDir("pwdless-crash");
    try {
      let total = 0;
      for (let round = 0; round < ROUNDS; round++) {
        const acked = await writeAndKill(dir, round, 150 + Math.floor(Math.random() * 900));
        expect(acked.size, `round ${round} acknowledged writes before the kill`).toBeGreaterThan(0);
        total += acked.size;
        const held = await readBack(dir);
        for (const [key, n] of acked) {
          const row = held.get(key);
          expect(row, `${key}, acknowledged in round ${round}`).toBeDefined();
          // a later version (written, maybe not acknowledged) may be there; never an older one
          if (row!.round === String(round)) expect(row!.n).toBeGreaterThanOrEqual(n);
        }
      }
      expect(total).toBeGreaterThan(ROUNDS * 50);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
