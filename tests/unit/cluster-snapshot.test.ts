import { afterEach, describe, expect, it } from "vitest";
import { TestCluster, waitFor } from "./cluster-support";

let world: TestCluster;
afterEach(async () => {
  await world.cleanup();
});

describe("catch-up at scale", () => {
  it("brings a new node up to 100k rows in bounded chunks, and then only the difference", async () => {
    world = new TestCluster();
    const a = await world.start({ discovery: "none" });
    const sessions = a.store.table<{ user: string; createdAt: number; agent: string }>("sessions");
    for (let i = 0; i < 100_000; i += 1) {
      sessions.set(`session-${i}`, {
        user: `user-${i % 5_000}`,
        createdAt: 1_700_000_000_000 + i,
        agent: "Mozilla/5.0",
      });
    }
    const begun = Date.now();
    const b = await world.start({ discovery: "none", peers: [a.status().addresses[0]] });
    await waitFor(() => b.isReady(), "B caught up", 60_000, 100);
    const snapshotMs = Date.now() - begun;
    expect(b.store.table("sessions").size).toBe(100_000);
    expect(b.status().counters.recordsPulled).toBe(100_000);
    console.info(`100k-row snapshot caught up in ${snapshotMs} ms`);

    // rows A holds that never went out on gossip (as after a partition) arrive by the
    // periodic catch-up, which carries only the buckets that differ
    const pulledBefore = b.status().counters.recordsPulled;
    const now = Date.now();
    for (let i = 0; i < 10; i += 1) {
      a.store.applyRemote({
        table: "sessions",
        key: `late-${i}`,
        value: { user: "u" },
        stamp: { t: now, c: i, n: "gone-node" },
      });
    }
    await waitFor(() => b.store.table("sessions").size === 100_010, "B has the 10 late rows", 30_000, 100);
    expect(b.status().counters.recordsPulled - pulledBefore).toBe(10);
  });
});
