// The store's applied-record feed: the seam persistence (and a second transport) listens on.
import { describe, expect, it } from "vitest";
import { ClusterStore, type ApplyOrigin, type RecordEnvelope } from "#cluster";

function feed(store: ClusterStore) {
  const seen: Array<[ApplyOrigin, RecordEnvelope]> = [];
  store.onApplied((record, origin) => seen.push([origin, record]));
  return seen;
}

describe("the applied-record feed", () => {
  it("tells every applied record with its origin and stamp, tombstones included", () => {
    const a = new ClusterStore({ nodeId: "a", clock: () => 1000 });
    const b = new ClusterStore({ nodeId: "b", clock: () => 1000 });
    const seenA = feed(a);
    const seenB = feed(b);
    const out: RecordEnvelope[] = [];
    a.onLocalWrite((r) => out.push(r));
    const t = a.table<{ n: number }>("things");
    t.set("k", { n: 1 });
    t.delete("k");
    expect(seenA.map(([o, r]) => [o, r.key, r.value])).toEqual([
      ["local", "k", { n: 1 }],
      ["local", "k", null],
    ]);
    expect(seenA[1][1].stamp).toEqual({ t: 1000, c: 1, n: "a" });
    b.applyRemote(out[0]);
    b.applyRemote(out[1], "sync");
    expect(seenB.map(([o, r]) => [o, r.key, r.value])).toEqual([
      ["remote", "k", { n: 1 }],
      ["sync", "k", null],
    ]);
  });

  it("does not tell stale or rejected records, so a restore applied twice is told once", () => {
    const store = new ClusterStore({ nodeId: "r", clock: () => 10_000 });
    const seen = feed(store);
    const record = { table: "users", key: "u", value: { e: 1 }, stamp: { t: 5, c: 0, n: "w" } };
    expect(store.applyRemote(record, "restore")).toBe("applied");
    expect(store.applyRemote(record, "restore")).toBe("stale");
    expect(store.applyRemote({ ...record, table: "Bad Name" }, "restore")).toBe("rejected");
    expect(seen.map(([o]) => o)).toEqual(["restore"]);
  });
});
