// What a node holds per user does not depend on how the rows reached it: rows read back from the
// node's own files take no more memory than rows caught up from a peer (decision 015: both are
// the same binary records, with the same indexes), at 50k users as an email sign-in writes them.
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { ROOT } from "#tests/support/node.ts";

describe("memory per user", () => {
  it("is no more for a node restored from its files than for one that caught up, within 10 %", () => {
    const run = spawnSync(
      process.execPath,
      ["--expose-gc", "--import", "tsx", "tests/support/memory-shape.ts", "50000"],
      {
        cwd: ROOT,
        encoding: "utf8",
        timeout: 120_000,
      },
    );
    expect(run.status, run.stderr).toBe(0);
    const figures = JSON.parse(run.stdout.trim()) as {
      applied: number;
      restoredRows: Record<string, number>;
      joinedPerUser: number;
      restoredPerUser: number;
    };
    expect(figures.applied).toBe(150_000);
    expect(figures.restoredRows).toMatchObject({ users: 50_000, emails: 50_000, sessions: 50_000 });
    console.info(
      `heap + external memory per user: caught up ${figures.joinedPerUser.toFixed(0)} B, restored ${figures.restoredPerUser.toFixed(0)} B`,
    );
    expect(figures.restoredPerUser).toBeLessThanOrEqual(figures.joinedPerUser * 1.1);
    // and both hold the rows as records, not as objects (a user as objects cost ~900 B)
    expect(figures.joinedPerUser).toBeLessThan(600);
  });
});
