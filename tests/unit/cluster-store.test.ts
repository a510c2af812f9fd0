import { describe, expect, it } from "vitest";
import { ClusterStore, compareStamps, HybridLogicalClock, type RecordEnvelope } from "../../cluster";
import { computeTableDigest, differingBuckets } from "../../cluster/digest";
import { checkRecordBatch } from "../../cluster/replication";

/** A deterministic pseudo-random sequence, so a failure can be replayed. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function shuffled<T>(items: T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

function contents(store: ClusterStore): string {
  return JSON.stringify(
    [...store.records()].sort((x, y) => `${x.table}/${x.key}`.localeCompare(`${y.table}/${y.key}`)),
  );
}

/** Three writers with drifting clocks write, delete and claim over the same few keys. */
function concurrentHistory(seed: number): RecordEnvelope[] {
  const random = prng(seed);
  const time = { now: 1_700_000_000_000 };
  const writers = ["node-a", "node-b", "node-c"].map((id, i) => {
    const store = new ClusterStore({ nodeId: id, clock: () => time.now + i * 3 - Math.floor(random() * 5) });
    return store;
  });
  const log: RecordEnvelope[] = [];
  for (const writer of writers) writer.onLocalWrite((r) => log.push(r));
  for (let step = 0; step < 400; step += 1) {
    time.now += Math.floor(random() * 3);
    const writer = writers[Math.floor(random() * writers.length)];
    const key = `k${Math.floor(random() * 12)}`;
    const op = random();
    if (op < 0.6) writer.table("users").set(key, { by: writer.nodeId, step });
    else if (op < 0.8) writer.table("users").delete(key);
    else if (op < 0.9) writer.table<string>("claims", { merge: "first-writer-wins" }).set(key, writer.nodeId);
    // claims that are released (an erased account, a changed address) and made again
    else if (op < 0.96) writer.table("released", { merge: "first-writer-wins" }).set(key, { by: writer.nodeId, step });
    else writer.table("released", { merge: "first-writer-wins" }).delete(key);
    // some writes reach another writer before it writes again
    if (random() < 0.3) {
      const other = writers[Math.floor(random() * writers.length)];
      if (other !== writer) other.applyRemote(log[log.length - 1]);
    }
  }
  return log;
}

describe("replicated tables merge the same way on every node", () => {
  it("converges to one state whatever order the writes arrive in", () => {
    const history = concurrentHistory(42);
    const random = prng(7);
    const states = new Set<string>();
    for (let replica = 0; replica < 8; replica += 1) {
      const store = new ClusterStore({ nodeId: `replica-${replica}`, clock: () => 1_800_000_000_000 });
      store.table("claims", { merge: "first-writer-wins" });
      store.table("released", { merge: "first-writer-wins" });
      // every order, and duplicates, give the same result
      const arrivals = shuffled([...history, ...history.slice(0, 50)], random);
      for (const record of arrivals) store.applyRemote(record);
      states.add(contents(store));
    }
    expect(states.size).toBe(1);
  });

  it("keeps the greatest stamp for ordinary tables and the smallest for first-writer-wins", () => {
    const history = concurrentHistory(3);
    const store = new ClusterStore({ nodeId: "reader", clock: () => 1_800_000_000_000 });
    store.table("claims", { merge: "first-writer-wins" });
    for (const record of shuffled(history, prng(11))) store.applyRemote(record);
    for (const table of ["users", "claims"]) {
      const byKey = new Map<string, RecordEnvelope[]>();
      for (const r of history.filter((h) => h.table === table)) byKey.set(r.key, [...(byKey.get(r.key) ?? []), r]);
      for (const [key, versions] of byKey) {
        const sorted = [...versions].sort((x, y) => compareStamps(x.stamp, y.stamp));
        const winner = table === "claims" ? sorted[0] : sorted[sorted.length - 1];
        expect(store.stampOf(table, key)).toEqual(winner.stamp);
      }
    }
  });

  it("keeps a delete when an older write arrives after it, and collects the tombstone after its period", () => {
    let now = 1_000_000;
    const writer = new ClusterStore({ nodeId: "w", clock: () => now });
    const records: RecordEnvelope[] = [];
    writer.onLocalWrite((r) => records.push(r));
    const users = writer.table("users");
    users.set("u", { v: 1 });
    now += 10;
    users.delete("u");

    const reader = new ClusterStore({ nodeId: "r", clock: () => now, tombstoneTtlMs: 1_000 });
    reader.applyRemote(records[1]);
    expect(reader.applyRemote(records[0])).toBe("stale");
    expect(reader.table("users").has("u")).toBe(false);
    expect(reader.stampOf("users", "u")).toEqual(records[1].stamp);
    expect(reader.collectTombstones()).toBe(0);
    now += 2_000;
    expect(reader.collectTombstones()).toBe(1);
    expect(reader.stampOf("users", "u")).toBeUndefined();
  });

  it("refuses a first-writer-wins key that is taken, locally and from a later remote claim", () => {
    let now = 5_000;
    const a = new ClusterStore({ nodeId: "a", clock: () => now });
    const b = new ClusterStore({ nodeId: "b", clock: () => now });
    const claimsA = a.table<string>("emails", { merge: "first-writer-wins" });
    const claimsB = b.table<string>("emails", { merge: "first-writer-wins" });
    const sent: RecordEnvelope[] = [];
    b.onLocalWrite((r) => sent.push(r));
    expect(claimsA.set("ann@example.test", "user-1")).toBe(true);
    expect(claimsA.set("ann@example.test", "user-2")).toBe(false);
    now += 1;
    claimsB.set("ann@example.test", "user-3");
    expect(a.applyRemote(sent[0])).toBe("stale");
    expect(claimsA.get("ann@example.test")).toBe("user-1");
    // a release: the key can be claimed again, but only with an object value that says which release it follows
    claimsA.delete("ann@example.test");
    expect(claimsA.has("ann@example.test")).toBe(false);
    expect(() => claimsA.set("ann@example.test", "user-4")).toThrow();
  });

  it("lets a released claim be made again, and never lets a claim from before the release come back", () => {
    let now = 5_000;
    const a = new ClusterStore({ nodeId: "a", clock: () => now });
    const b = new ClusterStore({ nodeId: "b", clock: () => now });
    const late = new ClusterStore({ nodeId: "late", clock: () => now });
    for (const s of [a, b, late]) s.table("emails", { merge: "first-writer-wins" });
    const log: RecordEnvelope[] = [];
    a.onLocalWrite((r) => log.push(r));
    const claims = a.table<{ uid: string; after?: number }>("emails");
    claims.set("ann@example.test", { uid: "old" });
    const oldClaim = log[0]!;
    now += 10;
    claims.delete("ann@example.test");
    now += 10;
    expect(claims.set("ann@example.test", { uid: "new" })).toBe(true);
    expect(claims.get("ann@example.test")).toEqual({ uid: "new", after: 5_010 });
    // a node that saw only the old claim, and one that sees everything in any order, agree with a
    late.applyRemote(oldClaim);
    for (const r of [log[2]!, log[1]!]) late.applyRemote(r);
    expect(late.table("emails").get("ann@example.test")).toEqual({ uid: "new", after: 5_010 });
    for (const r of [log[2]!, oldClaim, log[1]!]) b.applyRemote(r);
    expect(b.table("emails").get("ann@example.test")).toEqual({ uid: "new", after: 5_010 });
    // the old claim arriving last is stale: it predates the release
    expect(a.applyRemote(oldClaim)).toBe("stale");
  });

  it("orders stamps after whatever was observed, even when the wall clock goes back", () => {
    let wall = 10_000;
    const clock = new HybridLogicalClock("n", () => wall);
    const first = clock.now();
    clock.observe({ t: 20_000, c: 4, n: "other" });
    wall = 9_000;
    const second = clock.now();
    expect(compareStamps(second, first)).toBe(1);
    expect(compareStamps(second, { t: 20_000, c: 4, n: "other" })).toBe(1);
  });
});

describe("gossip validation and digests", () => {
  const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
  const good = { table: "users", key: "k", value: { a: 1 }, stamp: { t: 1_000, c: 0, n: "peer-1" } };

  it("accepts a well-formed batch of the sender's own writes and names what is wrong with others", () => {
    expect(checkRecordBatch(enc({ v: 1, records: [good] }), "peer-1", 1_000, 60_000)).toEqual({
      ok: true,
      records: [good],
    });
    const reason = (data: Uint8Array, from = "peer-1") => {
      const verdict = checkRecordBatch(data, from, 1_000, 60_000);
      return verdict.ok ? "ok" : verdict.reason;
    };
    expect(reason(new Uint8Array([0xff, 0xfe]))).toBe("malformed-json");
    expect(reason(enc({ v: 9, records: [good] }))).toBe("unknown-version");
    expect(reason(enc({ records: [good] }))).toBe("malformed");
    expect(reason(enc({ v: 1, records: [] }))).toBe("malformed");
    expect(reason(enc({ v: 1, records: [{ ...good, key: "" }] }))).toBe("malformed");
    expect(reason(enc({ v: 1, records: [{ ...good, stamp: { t: -1, c: 0, n: "peer-1" } }] }))).toBe("malformed");
    expect(reason(enc({ v: 1, records: [good] }), "peer-2")).toBe("foreign-stamp");
    expect(reason(enc({ v: 1, records: [{ ...good, stamp: { t: 100_000, c: 0, n: "peer-1" } }] }))).toBe("clock-skew");
    expect(reason(enc({ v: 1, records: [{ ...good, value: "x".repeat(70_000) }] }))).toBe("too-large");
  });

  it("finds the one bucket where two replicas differ", () => {
    const a = new ClusterStore({ nodeId: "a" });
    const b = new ClusterStore({ nodeId: "b" });
    const replicate = a.onLocalWrite((r) => b.applyRemote(r));
    for (let i = 0; i < 1_000; i += 1) a.table("t").set(`k${i}`, i);
    replicate();
    expect(differingBuckets(computeTableDigest(a, "t"), computeTableDigest(b, "t").buckets).size).toBe(0);
    a.table("t").set("k500", "changed only on a");
    const diff = differingBuckets(computeTableDigest(a, "t"), computeTableDigest(b, "t").buckets);
    expect(diff.size).toBe(1);
    // a replica without the table differs in every bucket that holds rows: a full snapshot
    expect(differingBuckets(computeTableDigest(a, "t"), undefined).size).toBeGreaterThan(400);
  });
});
