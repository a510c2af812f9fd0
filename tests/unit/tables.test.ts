import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ClusterStore } from "../../cluster/index";

describe("the table API", () => {
  it("gets, sets, deletes and scans, and tells listeners", () => {
    const store = new ClusterStore({ nodeId: "a", clock: () => 1000 });
    const users = store.table<{ email: string }>("users");
    const seen: string[] = [];
    users.onChange((c) => seen.push(`${c.origin}:${c.key}:${c.value?.email ?? "-"}`));
    users.set("u1", { email: "a@x.io" });
    users.set("u2", { email: "b@x.io" });
    expect(users.get("u1")).toEqual({ email: "a@x.io" });
    expect(users.size).toBe(2);
    users.delete("u1");
    expect(users.get("u1")).toBeUndefined();
    expect(users.has("u1")).toBe(false);
    expect([...users.scan()].map(([k]) => k)).toEqual(["u2"]);
    expect(seen).toEqual(["local:u1:a@x.io", "local:u2:b@x.io", "local:u1:-"]);
  });

  it("publishes every local write, with a clock stamp and the writer's node id", () => {
    const store = new ClusterStore({ nodeId: "node-a", clock: () => 5000 });
    const out: unknown[] = [];
    store.onLocalWrite((r) => out.push(r));
    const t = store.table<number>("counts");
    t.set("k", 1);
    t.set("k", 2);
    expect(out).toEqual([
      { table: "counts", key: "k", value: 1, stamp: { t: 5000, c: 0, n: "node-a" } },
      { table: "counts", key: "k", value: 2, stamp: { t: 5000, c: 1, n: "node-a" } },
    ]);
  });

  it("merges remote writes: the greater stamp wins on every node, in any order", () => {
    const a = new ClusterStore({ nodeId: "a", clock: () => 10_000 });
    const b = new ClusterStore({ nodeId: "b", clock: () => 10_000 });
    const older = { table: "t", key: "k", value: "old", stamp: { t: 9000, c: 0, n: "z" } };
    const newer = { table: "t", key: "k", value: "new", stamp: { t: 9000, c: 1, n: "a" } };
    a.applyRemote(older);
    a.applyRemote(newer);
    b.applyRemote(newer);
    expect(b.applyRemote(older)).toBe("stale");
    expect(a.table("t").get("k")).toBe("new");
    expect(b.table("t").get("k")).toBe("new");
  });

  it("keeps the first claim in a first-writer-wins table", () => {
    const store = new ClusterStore({ nodeId: "b", clock: () => 10_000 });
    const emails = store.table<{ uid: string }>("emails", { merge: "first-writer-wins" });
    emails.set("a@x.io", { uid: "late" });
    expect(emails.set("a@x.io", { uid: "later" })).toBe(false);
    store.applyRemote({ table: "emails", key: "a@x.io", value: { uid: "early" }, stamp: { t: 1, c: 0, n: "a" } });
    expect(emails.get("a@x.io")).toEqual({ uid: "early" });
    expect(
      store.applyRemote({ table: "emails", key: "a@x.io", value: { uid: "x" }, stamp: { t: 2, c: 0, n: "a" } }),
    ).toBe("stale");
  });

  it("rejects remote values that fail the table's schema, and clocks far in the future", () => {
    const store = new ClusterStore({ nodeId: "a", clock: () => 10_000, maxClockSkewMs: 1000 });
    const t = store.table("users", { schema: z.object({ email: z.string() }) });
    expect(store.applyRemote({ table: "users", key: "u", value: { email: 42 }, stamp: { t: 1, c: 0, n: "b" } })).toBe(
      "rejected",
    );
    expect(
      store.applyRemote({ table: "users", key: "u", value: { email: "x" }, stamp: { t: 99_999, c: 0, n: "b" } }),
    ).toBe("rejected");
    expect(store.applyRemote({ table: "Bad Name", key: "u", value: {}, stamp: { t: 1, c: 0, n: "b" } })).toBe(
      "rejected",
    );
    expect(t.size).toBe(0);
    expect(store.counters.remoteRejected).toBe(3);
  });

  it("collects tombstones after the safe period", () => {
    let now = 1000;
    const store = new ClusterStore({ nodeId: "a", clock: () => now, tombstoneTtlMs: 500 });
    const t = store.table<number>("t");
    t.set("k", 1);
    t.delete("k");
    expect(store.stampOf("t", "k")).toBeDefined();
    expect(store.collectTombstones()).toBe(0);
    now = 2000;
    expect(store.collectTombstones()).toBe(1);
    expect(store.stampOf("t", "k")).toBeUndefined();
  });
});

describe("a secondary index over a table", () => {
  it("follows local writes, remote writes and deletes", async () => {
    const { indexTable } = await import("../../cluster/index");
    const store = new ClusterStore({ nodeId: "a", clock: () => 10_000 });
    const sessions = store.table<{ uid: string }>("sessions");
    sessions.set("s0", { uid: "u1" });
    const byUser = indexTable(sessions, (_sid, row) => row.uid);
    sessions.set("s1", { uid: "u1" });
    store.applyRemote({ table: "sessions", key: "s2", value: { uid: "u2" }, stamp: { t: 9000, c: 0, n: "b" } });
    expect([...byUser.keys("u1")].sort()).toEqual(["s0", "s1"]);
    expect([...byUser.keys("u2")]).toEqual(["s2"]);
    sessions.set("s1", { uid: "u2" }); // moved
    sessions.delete("s0");
    expect([...byUser.keys("u1")]).toEqual([]);
    expect([...byUser.keys("u2")].sort()).toEqual(["s1", "s2"]);
  });
});

describe("logging rejected gossip", () => {
  it("counts every rejection but asks for a log line only at the 1st, 10th, 100th… of a reason", async () => {
    const { countRejection } = await import("../../cluster/replication");
    const counters = { messagesIn: 0, messagesOut: 0, rejected: {} as Record<string, number> };
    const logged: number[] = [];
    for (let i = 1; i <= 250; i++) if (countRejection(counters, "malformed")) logged.push(i);
    expect(logged).toEqual([1, 10, 100]);
    expect(counters.rejected.malformed).toBe(250);
    expect(countRejection(counters, "too-large", 3)).toBe(true);
  });
});
