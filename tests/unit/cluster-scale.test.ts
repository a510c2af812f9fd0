// The cluster at scale, module by module: running digests, sliced and resumable catch-up, compact rows.
import { describe, expect, it } from "vitest";
import { ClusterStore, type RecordEnvelope } from "#cluster";
import { computeTableDigest } from "../../cluster/digest";
import { fnv1a, KeyIndex } from "../../cluster/key-index";
import { fastMessageId } from "../../cluster/libp2p";
import { applyFrames, digestRequest, syncFrames, type PullResult } from "../../cluster/sync";

/** A deterministic pseudo-random sequence, so a failure can be replayed. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const quiet = { info() {}, warn() {}, error() {} };
const emptyResult = (): PullResult => ({ received: 0, applied: 0, rejected: 0, differingBuckets: 0 });

function contents(store: ClusterStore): string {
  return JSON.stringify(
    [...store.records()].sort((x, y) => `${x.table}/${x.key}`.localeCompare(`${y.table}/${y.key}`)),
  );
}

/** Serve `from`'s answer to `to`'s digest, as the puller reads it off the stream. */
async function* served(from: ClusterStore, to: ClusterStore, sliceMs?: number) {
  for await (const frame of syncFrames(from, digestRequest(to), { log: quiet, sliceMs })) yield Buffer.from(frame);
}

/** The first `count` frames only: a pull whose connection dropped. */
async function* cutAfter(frames: AsyncIterable<Buffer>, count: number) {
  let seen = 0;
  for await (const frame of frames) {
    if (seen++ === count) throw new Error("connection lost");
    yield frame;
  }
}

describe("the running digest", () => {
  it("equals a full recompute after random writes, deletes, remote versions and tombstone collection", () => {
    const random = prng(99);
    let now = 1_700_000_000_000;
    const store = new ClusterStore({ nodeId: "node-a", clock: () => now, tombstoneTtlMs: 5_000 });
    const claims = store.table<{ uid: string }>("claims", { merge: "first-writer-wins" });
    const users = store.table<{ n: number }>("users");
    for (let step = 0; step < 5_000; step += 1) {
      now += Math.floor(random() * 20);
      const key = `k${Math.floor(random() * 300)}`;
      const op = random();
      if (op < 0.45) users.set(key, { n: step });
      else if (op < 0.65) users.delete(key);
      else if (op < 0.8) claims.set(key, { uid: `u${step}` });
      else {
        // a peer's version, older or newer than ours
        const record: RecordEnvelope = {
          table: random() < 0.5 ? "users" : "claims",
          key,
          value: random() < 0.2 ? null : { n: -step, uid: `r${step}` },
          stamp: { t: now - 50 + Math.floor(random() * 100), c: 0, n: random() < 0.5 ? "node-b" : "node-c" },
        };
        if (record.table === "claims" && record.value === null) record.value = { uid: "x" };
        store.applyRemote(record);
      }
      if (step % 700 === 699) store.collectTombstones();
      if (step % 250 === 0) {
        for (const table of ["users", "claims"]) {
          const full = computeTableDigest(store, table);
          expect(store.digestOf(table).count).toBe(full.count);
          expect([...store.digestOf(table).buckets]).toEqual([...full.buckets]);
        }
      }
    }
    now += 60_000;
    expect(store.collectTombstones()).toBeGreaterThan(0);
    for (const table of ["users", "claims"]) {
      expect([...store.digestOf(table).buckets]).toEqual([...computeTableDigest(store, table).buckets]);
    }
    // two replicas holding the same versions have the same digest, whatever the order they got them in
    const replica = new ClusterStore({ nodeId: "replica", clock: () => now });
    replica.table("claims", { merge: "first-writer-wins" });
    for (const record of [...store.records()].reverse()) replica.applyRemote(record);
    expect([...replica.digestOf("users").buckets]).toEqual([...store.digestOf("users").buckets]);
  });
});

describe("a sliced, resumable catch-up", () => {
  function filled(rows: number): ClusterStore {
    const store = new ClusterStore({ nodeId: "writer", clock: () => 1_700_000_000_000 });
    const sessions = store.table<{ uid: string; agent: string; at: number }>("sessions");
    const users = store.table<{ email: string }>("users");
    for (let i = 0; i < rows; i += 1) {
      sessions.set(`s-${i}`, { uid: `u-${i % 997}`, agent: "Mozilla/5.0", at: i });
      if (i % 2 === 0) users.set(`u-${i}`, { email: `user${i}@example.test` });
    }
    return store;
  }

  it("yields to the event loop while it serves and applies, and converges", async () => {
    const from = filled(20_000);
    const to = new ClusterStore({ nodeId: "joiner", clock: () => 1_700_000_000_000 });
    let ticks = 0;
    const timer = setInterval(() => (ticks += 1), 0);
    const result = emptyResult();
    await applyFrames(served(from, to, 1), to, result, 1);
    clearInterval(timer);
    expect(result.applied).toBe(30_000);
    expect(contents(to)).toBe(contents(from));
    // with 1 ms slices, timers ran many times during the pull
    expect(ticks).toBeGreaterThan(10);
  });

  it("resumes an interrupted pull where it stopped, not from the first table", async () => {
    const from = filled(20_000);
    const to = new ClusterStore({ nodeId: "joiner", clock: () => 1_700_000_000_000 });
    const first = emptyResult();
    await expect(applyFrames(cutAfter(served(from, to), 3), to, first)).rejects.toThrow("connection lost");
    expect(first.applied).toBeGreaterThan(0);
    expect(first.applied).toBeLessThan(30_000);

    const second = emptyResult();
    await applyFrames(served(from, to), to, second);
    expect(contents(to)).toBe(contents(from));
    // the second pull carries what the first did not, plus at most the group of buckets it was
    // cut in (rows go by groups of 64 of the 512 buckets: an eighth of a table)
    expect(second.applied).toBe(30_000 - first.applied);
    expect(second.received).toBeLessThan(30_000 - first.applied + 20_000 / 8 + 200);

    // and a third pull finds nothing to carry
    const third = emptyResult();
    await applyFrames(served(from, to), to, third);
    expect(third.received).toBe(0);
    expect(third.differingBuckets).toBe(0);
  });

  it("refuses a malformed frame after keeping what came before it, and counts rejected rows", async () => {
    const now = 1_700_000_000_000;
    const to = new ClusterStore({ nodeId: "joiner", clock: () => now });
    // a writer whose clock then jumps a day ahead: its later rows are refused as from the future
    let clock = now;
    const writer = new ClusterStore({ nodeId: "w", clock: () => clock });
    writer.table<number>("t").set("a", 1);
    clock += 86_400_000;
    writer.table<number>("t").set("b", 2);
    writer.table<number>("t").set("c", 3);
    const good: Buffer[] = [];
    for await (const frame of served(writer, to)) good.push(frame);
    good.pop(); // its done frame
    // a rows frame of table t whose one record says it is longer than the frame
    const broken = Buffer.from([0x03, 0x06, 0x01, 0x74, 0x7f, 0x06, 0x01]);
    const result = emptyResult();
    async function* frames() {
      yield* good;
      yield broken;
    }
    await expect(applyFrames(frames(), to, result)).rejects.toThrow("malformed sync frame");
    expect(result).toMatchObject({ received: 3, applied: 1, rejected: 2 });
    expect(to.table("t").get("a")).toBe(1);
  });
});

describe("compact rows", () => {
  it("give back every value, key and stamp as written, locally and after a catch-up", async () => {
    const writer = new ClusterStore({ nodeId: "writer", clock: () => 1_700_000_000_000 });
    const users = writer.table<{ id: string; email: string; createdOn: string; tags: string[] }>("users", {
      strings: { email: { keyOf: "emails" }, createdOn: "shared" },
    });
    const emails = writer.table<{ uid: string }>("emails", { strings: { uid: { keyOf: "users" } } });
    const written = new Map<string, unknown>();
    for (let i = 0; i < 500; i += 1) {
      const user = { id: `u-${i}`, email: `p${i}@example.test`, createdOn: "writer", tags: i % 3 ? [] : ["a", "b"] };
      users.set(user.id, user);
      emails.set(user.email, { uid: user.id });
      written.set(user.id, structuredClone(user));
    }
    writer.table<number | string | null>("misc").set("n", 12.5);
    writer.table<number | string | null>("misc").set("s", "s");
    for (const [id, user] of written) expect(users.get(id)).toEqual(user);
    expect(writer.table("misc").get("n")).toBe(12.5);

    const reader = new ClusterStore({ nodeId: "reader", clock: () => 1_700_000_000_000 });
    await applyFrames(served(writer, reader), reader, emptyResult());
    expect(contents(reader)).toBe(contents(writer));
    const readerUsers = reader.table<{ email: string }>("users");
    for (const [id, user] of written) expect(readerUsers.get(id)).toEqual(user);
    expect(reader.stampOf("users", "u-7")).toEqual(writer.stampOf("users", "u-7"));
    expect([...reader.table("users").scan()].length).toBe(500);
  });

  it("validates rows stored before the table had a schema once, when the schema arrives", () => {
    const store = new ClusterStore({ nodeId: "n", clock: () => 1_000 });
    store.applyRemote({ table: "t", key: "ok", value: { n: 1 }, stamp: { t: 1, c: 0, n: "p" } }, "sync");
    store.applyRemote({ table: "t", key: "bad", value: { n: "x" }, stamp: { t: 1, c: 0, n: "p" } }, "sync");
    let parsed = 0;
    const schema = {
      parse(input: unknown) {
        parsed += 1;
        const value = input as { n: unknown };
        if (typeof value.n !== "number") throw new Error("n must be a number");
        return { n: value.n };
      },
    };
    const table = store.table<{ n: number }>("t", { schema });
    expect(parsed).toBe(2);
    expect(table.get("ok")).toEqual({ n: 1 });
    expect(table.has("bad")).toBe(false);
    expect(store.digestOf("t").count).toBe(1);
    // opened again: nothing left to check
    store.table<{ n: number }>("t", { schema });
    expect(parsed).toBe(2);
  });
});

describe("the key index", () => {
  it("finds, adds and removes keys as a Map would, across growth and removals", () => {
    const random = prng(5);
    const keys: string[] = [];
    let probe = "";
    const index = new KeyIndex({ matches: (slot) => keys[slot] === probe });
    const reference = new Map<string, number>();
    const free: number[] = [];
    let used = 0;
    const find = (key: string) => {
      probe = key;
      return index.find(fnv1a(key));
    };
    for (let step = 0; step < 20_000; step += 1) {
      const key = `key-${Math.floor(random() * 3_000)}`;
      const slot = find(key);
      expect(slot).toBe(reference.get(key) ?? -1);
      if (slot < 0) {
        const next = free.pop() ?? used++;
        index.reserve(used);
        keys[next] = key;
        index.insert(next, fnv1a(key));
        reference.set(key, next);
      } else if (random() < 0.5) {
        index.remove(slot);
        reference.delete(key);
        free.push(slot);
      }
    }
    for (const [key, slot] of reference) expect(find(key)).toBe(slot);
    expect(find("never-added")).toBe(-1);
  });
});

describe("gossip's fast message id", () => {
  it("is the same for a duplicate and differs when the publisher, sequence number or payload differ", () => {
    const bytes = (text: string) => new TextEncoder().encode(text);
    const message = { from: bytes("peer-a"), seqno: bytes("00000001"), data: bytes('{"v":1,"records":[]}') };
    expect(fastMessageId({ ...message })).toBe(fastMessageId(message));
    expect(fastMessageId({ ...message, from: bytes("peer-b") })).not.toBe(fastMessageId(message));
    expect(fastMessageId({ ...message, seqno: bytes("00000002") })).not.toBe(fastMessageId(message));
    expect(fastMessageId({ ...message, data: bytes('{"v":1,"records":[1]}') })).not.toBe(fastMessageId(message));
  });
});
