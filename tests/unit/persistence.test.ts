// The tables files (format 2): what the store applies is committed to the change log and read
// back through the same merge; snapshots replace the logs; a file the node must not use is
// refused with one line, and left byte for byte as it was.
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  backupTables,
  ClusterStore,
  ClusterUnavailableError,
  compareStamps,
  FilePersistence,
  logFileName,
  PersistenceError,
  SNAPSHOT_FILE,
  type FilePersistenceOptions,
  type RecordEnvelope,
} from "#cluster";
import { ROOT } from "#tests/support/node.ts";
import { memoryLogger } from "./cluster-support";

const sqlite = createRequire(import.meta.url)("node:sqlite") as typeof import("node:sqlite");
const DAY = 24 * 60 * 60 * 1000;

const dirs: string[] = [];
const opened: FilePersistence[] = [];
afterEach(async () => {
  for (const p of opened.splice(0)) await p.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "pwdless-tables-"));
  dirs.push(dir);
  return dir;
}

async function open(
  dir: string,
  store: ClusterStore,
  options: Partial<FilePersistenceOptions> = {},
  tombstoneTtlMs = 7 * DAY,
  log = memoryLogger(),
) {
  const persistence = new FilePersistence({ dir, clusterName: "unit", maintenanceMs: 3_600_000, ...options });
  const result = await persistence.start({ store, log, tombstoneTtlMs });
  opened.push(persistence);
  return { persistence, result, log };
}

async function close(persistence: FilePersistence) {
  opened.splice(opened.indexOf(persistence), 1);
  await persistence.stop();
}

const sorted = (store: ClusterStore): RecordEnvelope[] =>
  [...store.records()].sort((x, y) => `${x.table}/${x.key}`.localeCompare(`${y.table}/${y.key}`));

/** Every row the files of `dir` hold, read by a fresh store. */
async function readBack(dir: string, clusterName = "unit"): Promise<RecordEnvelope[]> {
  const store = new ClusterStore({ nodeId: "reader", clock: () => Date.now() + 365 * DAY });
  const persistence = new FilePersistence({ dir, clusterName });
  await persistence.start({ store, log: memoryLogger(), tombstoneTtlMs: DAY });
  await persistence.stop();
  return sorted(store);
}

/** sha256 of every file of a folder: "left untouched" means all of them. */
function fingerprint(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir).sort()) {
    const file = path.join(dir, name);
    if (statSync(file).isFile()) out[name] = createHash("sha256").update(readFileSync(file)).digest("hex");
  }
  return out;
}

describe("the tables files", () => {
  it("commit local, gossiped and caught-up records, and read them back with their stamps", async () => {
    const dir = tempDir();
    const store = new ClusterStore({ nodeId: "a", clock: () => 1_000 });
    const { persistence, result } = await open(dir, store);
    expect(result).toMatchObject({ existed: false, restored: 0 });
    const users = store.table<{ email: string }>("users");
    users.set("u1", { email: "one@example.com" });
    users.set("u2", { email: "two@example.com" });
    users.delete("u2");
    store.applyRemote({
      table: "users",
      key: "u3",
      value: { email: "three@example.com" },
      stamp: { t: 900, c: 0, n: "b" },
    });
    store.applyRemote({ table: "sessions", key: "s1", value: { uid: "u3" }, stamp: { t: 950, c: 2, n: "c" } }, "sync");
    persistence.writeMeta("lastContact", "12345");
    await persistence.durable();
    // one event-loop turn, one commit
    expect(persistence.counters.commits).toBe(1);
    await close(persistence);

    const again = new ClusterStore({ nodeId: "a", clock: () => 2_000 });
    const seen: string[] = [];
    again.onApplied((r, origin) => seen.push(`${origin}:${r.table}/${r.key}`));
    const reopened = await open(dir, again);
    expect(reopened.result).toMatchObject({ existed: true, restored: 4, refused: 0 });
    expect(sorted(again)).toEqual([
      { table: "sessions", key: "s1", value: { uid: "u3" }, stamp: { t: 950, c: 2, n: "c" } },
      { table: "users", key: "u1", value: { email: "one@example.com" }, stamp: { t: 1_000, c: 0, n: "a" } },
      { table: "users", key: "u2", value: null, stamp: { t: 1_000, c: 2, n: "a" } },
      { table: "users", key: "u3", value: { email: "three@example.com" }, stamp: { t: 900, c: 0, n: "b" } },
    ]);
    expect(reopened.persistence.readMeta("lastContact")).toBe("12345");
    expect(seen.every((s) => s.startsWith("restore:"))).toBe(true);
    // restored rows are not written again, and the clock moved past them: new writes win
    await reopened.persistence.durable();
    expect(reopened.persistence.counters.recordsCommitted).toBe(0);
    again.table("users").set("u1", { email: "new@example.com" });
    expect(compareStamps(again.stampOf("users", "u1")!, { t: 1_000, c: 2, n: "a" })).toBe(1);
    // the row a peer sent before the table had a schema is still checked when it gets one
    const sessions = again.table<{ uid: string }>("sessions", {
      schema: {
        parse: (v) => {
          if ((v as { uid: string }).uid !== "u3") throw new Error("no");
          return v as { uid: string };
        },
      },
    });
    expect(sessions.get("s1")).toEqual({ uid: "u3" });
  });

  it("restores through the merge: newer versions, tombstones and first claims still win", async () => {
    const dir = tempDir();
    const store = new ClusterStore({ nodeId: "a", clock: () => 5_000 });
    store.table("emails", { merge: "first-writer-wins" });
    const { persistence } = await open(dir, store);
    store.applyRemote({
      table: "emails",
      key: "x@example.com",
      value: { uid: "first" },
      stamp: { t: 100, c: 0, n: "a" },
    });
    store.applyRemote({ table: "users", key: "gone", value: null, stamp: { t: 300, c: 0, n: "a" } });
    store.applyRemote({ table: "users", key: "kept", value: { v: "file" }, stamp: { t: 200, c: 0, n: "a" } });
    await persistence.durable();
    await close(persistence);

    // a peer's copy got here first: the merge decides (and the store's ids differ from the file's)
    const next = new ClusterStore({ nodeId: "a", clock: () => 5_000 });
    next.table("emails", { merge: "first-writer-wins" });
    next.applyRemote({
      table: "emails",
      key: "x@example.com",
      value: { uid: "later" },
      stamp: { t: 150, c: 0, n: "b" },
    });
    next.applyRemote({ table: "users", key: "gone", value: { v: "old" }, stamp: { t: 250, c: 0, n: "b" } });
    next.applyRemote({ table: "users", key: "kept", value: { v: "peer" }, stamp: { t: 400, c: 0, n: "b" } });
    const reopened = await open(dir, next);
    expect(next.table("emails").get("x@example.com")).toEqual({ uid: "first" });
    expect(next.table("users").has("gone")).toBe(false);
    expect(next.table("users").get("kept")).toEqual({ v: "peer" });
    // the files now speak the store's ids: written anew, and read back the same
    next.table("users").set("more", { v: 1 });
    await reopened.persistence.durable();
    await close(reopened.persistence);
    expect(await readBack(dir)).toEqual(sorted(next));
  });

  it("keeps only the newest version of a key, and commits what is pending on stop", async () => {
    const dir = tempDir();
    const store = new ClusterStore({ nodeId: "a", clock: () => 1_000 });
    const { persistence } = await open(dir, store);
    const t = store.table<{ n: number }>("things");
    for (let n = 0; n < 100; n++) t.set("k", { n });
    await close(persistence); // no durable(): stop commits
    expect((await readBack(dir)).map((r) => r.value)).toEqual([{ n: 99 }]);
  });

  it("commits a burst in bounded commits, and durable() waits for the one holding the last of it", async () => {
    const dir = tempDir();
    const store = new ClusterStore({ nodeId: "a", clock: () => 1_000 });
    const { persistence } = await open(dir, store);
    const rows = store.table<{ n: number; pad: string }>("rows");
    for (let i = 0; i < 40_000; i++) rows.set(`k${i}`, { n: i, pad: "p".repeat(100) });
    await persistence.durable();
    // ~5 MB of rows: more than one commit takes, each a few milliseconds of work
    expect(persistence.counters.commits).toBeGreaterThan(1);
    expect(persistence.counters.recordsCommitted).toBe(40_000);
    // a write after a durable() that resolved at once: the next durable() waits for it
    rows.set("late", { n: -1, pad: "" });
    await persistence.durable();
    await close(persistence);
    expect((await readBack(dir)).length).toBe(40_001);
  });

  it("writes a snapshot while writes go on, drops the logs before it, and reads back the newest of everything", async () => {
    const dir = tempDir();
    let now = 1_700_000_000_000;
    const store = new ClusterStore({ nodeId: "a", clock: () => now });
    const { persistence } = await open(dir, store, { snapshotAfterBytes: 1 << 30 });
    const rows = store.table<{ n: number; pad: string }>("rows");
    for (let i = 0; i < 5_000; i++) rows.set(`k${i}`, { n: i, pad: "p".repeat(50) });
    await persistence.durable();
    const snapshot = persistence.maintain();
    // writes while the snapshot is being written land in the next log
    for (let i = 0; i < 5_000; i += 7) {
      now += 1;
      rows.set(`k${i}`, { n: -i, pad: "q" });
      if (i % 700 === 0) await new Promise((r) => setImmediate(r));
    }
    await snapshot;
    await persistence.durable();
    expect(readdirSync(dir).filter((f) => f.endsWith(".log"))).toEqual([logFileName(2)]);
    await close(persistence);
    expect(await readBack(dir)).toEqual(sorted(store));
  });

  it("rejects durable() with a disk error past DATA_MAX_MB, keeps the rows pending, and recovers", async () => {
    const dir = tempDir();
    const store = new ClusterStore({ nodeId: "a", clock: () => 1_000 });
    const log = memoryLogger();
    const persistence = new FilePersistence({ dir, clusterName: "unit", maxBytes: 64 * 1024, retryMs: 10 });
    await persistence.start({ store, log, tombstoneTtlMs: DAY });
    opened.push(persistence);
    const blobs = store.table<{ blob: string }>("blobs");
    blobs.set("small", { blob: "x" });
    await persistence.durable();
    for (let i = 0; i < 40; i++) blobs.set(`big-${i}`, { blob: "y".repeat(4_000) });
    const failure = await persistence.durable().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(ClusterUnavailableError);
    expect((failure as ClusterUnavailableError).reason).toBe("disk");
    expect(log.lines.filter((l) => l.level === "error")).toHaveLength(1);
    // the memory copy still answers reads
    expect(blobs.get("big-39")?.blob.length).toBe(4_000);
    // room again once the big rows are deleted (tombstones are small)
    for (let i = 0; i < 40; i++) blobs.delete(`big-${i}`);
    await persistence.durable();
    expect(log.lines.some((l) => l.msg.includes("take writes again"))).toBe(true);
    await close(persistence);
    expect((await readBack(dir)).filter((r) => r.value !== null).map((r) => r.key)).toEqual(["small"]);
  });

  it("does not grow under churn: a snapshot leaves collected tombstones behind", async () => {
    const dir = tempDir();
    let now = 1_000_000;
    const store = new ClusterStore({ nodeId: "a", clock: () => now, tombstoneTtlMs: DAY });
    const { persistence } = await open(dir, store, { now: () => now }, DAY);
    const sessions = store.table<{ uid: string; pad: string }>("sessions");
    const sizes: number[] = [];
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 2_000; i++) sessions.set(`r${round}-${i}`, { uid: `u${i}`, pad: "p".repeat(200) });
      await persistence.durable();
      for (let i = 0; i < 2_000; i++) sessions.delete(`r${round}-${i}`);
      await persistence.durable();
      now += 2 * DAY;
      expect(store.collectTombstones()).toBe(2_000);
      await persistence.maintain();
      sizes.push(persistence.bytes());
    }
    await close(persistence);
    expect(await readBack(dir)).toEqual([]);
    // every round ends at the size of empty tables, not a round's worth more each time
    expect(Math.max(...sizes)).toBeLessThan(4_096);
  });

  it("copies itself into one backup file while it runs, which restores every row", async () => {
    const dir = tempDir();
    const store = new ClusterStore({ nodeId: "a", clock: () => 1_000 });
    const { persistence } = await open(dir, store);
    const t = store.table<{ n: number }>("t");
    for (let i = 0; i < 300; i++) t.set(`k${i}`, { n: i });
    await persistence.durable();
    await persistence.maintain();
    for (let i = 0; i < 300; i += 3) t.set(`k${i}`, { n: -i });
    await persistence.durable();
    const target = path.join(tempDir(), "backup.tables");
    await backupTables(dir, target);
    const restoredDir = tempDir();
    cpSync(target, path.join(restoredDir, SNAPSHOT_FILE));
    expect(await readBack(restoredDir)).toEqual(sorted(store));
    // and started on, the restored folder is an ordinary one again
    expect(readdirSync(restoredDir).sort()).toEqual([SNAPSHOT_FILE, logFileName(1)].sort());
    expect(await readBack(restoredDir)).toEqual(sorted(store));
  });
});

describe("tables files the node must not use", () => {
  /** Start on `dir` expecting a refusal; the folder's files must be byte for byte as before. */
  async function refusal(dir: string, clusterName = "unit"): Promise<PersistenceError> {
    const before = fingerprint(dir);
    const persistence = new FilePersistence({ dir, clusterName });
    const error = await persistence
      .start({ store: new ClusterStore({ nodeId: "a" }), log: memoryLogger(), tombstoneTtlMs: DAY })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(PersistenceError);
    expect(fingerprint(dir)).toEqual(before);
    expect((error as Error).message).not.toContain("\n");
    return error as PersistenceError;
  }

  /** A folder with a snapshot and a log with commits in it, as after a crash. */
  async function written(): Promise<string> {
    const dir = tempDir();
    const store = new ClusterStore({ nodeId: "a", clock: () => 1_000 });
    const { persistence } = await open(dir, store);
    for (let i = 0; i < 300; i++)
      store.table("users").set(`u${i}`, { email: `u${i}@example.com`, pad: "z".repeat(100) });
    await persistence.durable();
    await persistence.maintain();
    for (let i = 0; i < 300; i++)
      store.table("users").set(`v${i}`, { email: `v${i}@example.com`, pad: "w".repeat(100) });
    await persistence.durable();
    // left as a crash leaves it: no stop, the log open
    opened.splice(opened.indexOf(persistence), 1);
    return dir;
  }

  const snap = (dir: string) => path.join(dir, SNAPSHOT_FILE);
  const lastLog = (dir: string) =>
    path.join(
      dir,
      readdirSync(dir)
        .filter((f) => f.endsWith(".log"))
        .sort()
        .pop()!,
    );

  it("refuses garbage, naming the file and the way back", async () => {
    const dir = tempDir();
    writeFileSync(snap(dir), Buffer.alloc(8192, 7));
    const error = await refusal(dir);
    expect(error.problem).toBe("corrupt");
    expect(error.message).toContain(snap(dir));
    expect(error.message).toMatch(/restore a backup/);
  });

  it("refuses flipped bytes inside a stored value, in the snapshot and in the log", async () => {
    for (const file of [snap, lastLog]) {
      const dir = await written();
      const bytes = readFileSync(file(dir));
      const at = bytes.indexOf(Buffer.from("zzzzzzzz".replace(/z/g, file === snap ? "z" : "w")));
      expect(at).toBeGreaterThan(0);
      for (let i = 0; i < 64; i++) bytes[at + i]! ^= 0x20;
      writeFileSync(file(dir), bytes);
      const error = await refusal(dir);
      expect(error.problem).toBe("corrupt");
      expect(error.message).toMatch(/fails its checksum/);
      expect(error.message).toContain(file(dir));
    }
  });

  it("refuses a snapshot cut short, saying so rather than blaming permissions", async () => {
    const dir = await written();
    const bytes = readFileSync(snap(dir));
    writeFileSync(snap(dir), bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    const error = await refusal(dir);
    expect(error.problem).toBe("corrupt");
    expect(error.message).toMatch(/cut short/);
  });

  it("refuses to start without the change log the snapshot names (a lost log)", async () => {
    const dir = await written();
    rmSync(lastLog(dir));
    const error = await refusal(dir);
    expect(error.problem).toBe("missing-log");
    expect(error.message).toMatch(/is missing .*acknowledged/);
  });

  it("drops a commit a crash cut short at the end of the log, and keeps everything before it", async () => {
    const dir = await written();
    const before = await readBack(dir);
    // half a block: what a write cut short by a crash leaves
    const log = lastLog(dir);
    writeFileSync(log, Buffer.concat([readFileSync(log), Buffer.from([200, 0, 0, 0, 1, 2, 3, 4, 2, 9, 9])]));
    const store = new ClusterStore({ nodeId: "reader", clock: () => 5_000 });
    const { persistence, log: lines } = await open(dir, store);
    expect(sorted(store)).toEqual(before);
    expect(lines.lines.map((l) => l.msg)).toContainEqual(expect.stringContaining("cut short"));
    store.table("users").set("after", { email: "after@example.com" });
    await persistence.durable();
    await close(persistence);
    expect((await readBack(dir)).some((r) => r.key === "after")).toBe(true);
  });

  it("starts after a kill between creating the next change log and writing its header (an empty log)", async () => {
    const dir = await written();
    const before = await readBack(dir);
    // what a rotation killed right after open(…, "w+") leaves: the next generation, empty
    const last = lastLog(dir);
    const generation = Number(/tables-(\d+)\.log$/.exec(last)![1]);
    const empty = path.join(dir, logFileName(generation + 1));
    writeFileSync(empty, Buffer.alloc(0));
    const store = new ClusterStore({ nodeId: "reader", clock: () => 5_000 });
    const { persistence } = await open(dir, store);
    expect(sorted(store)).toEqual(before);
    store.table("users").set("after", { email: "after@example.com" });
    await persistence.durable();
    await close(persistence);
    expect((await readBack(dir)).some((r) => r.key === "after")).toBe(true);
  });

  it("still refuses a change log beside the chain that is not empty and not a log", async () => {
    const dir = await written();
    const generation = Number(/tables-(\d+)\.log$/.exec(lastLog(dir))![1]);
    writeFileSync(path.join(dir, logFileName(generation + 1)), Buffer.from("not a change log at all"));
    const error = await refusal(dir);
    expect(error.message).toMatch(/is not part of the files/);
  });

  it("refuses a file of a newer format, one of another cluster, and an SQLite file in its place", async () => {
    const dir = await written();
    const bytes = readFileSync(snap(dir));
    bytes.writeUInt32LE(99, 8);
    writeFileSync(snap(dir), bytes);
    const newer = await refusal(dir);
    expect(newer.problem).toBe("newer-format");
    expect(newer.message).toMatch(/format 99/);

    const other = await written();
    const error = await refusal(other, "another");
    expect(error.problem).toBe("other-cluster");
    expect(error.message).toContain("CLUSTER_NAME=unit");

    const foreign = tempDir();
    const db = new sqlite.DatabaseSync(snap(foreign));
    db.exec("CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('mine')");
    db.close();
    expect((await refusal(foreign)).problem).toBe("foreign");
  });
});

describe("a tables file of format 1 (SQLite, before decision 015)", () => {
  const fixture = path.join(ROOT, "tests/fixtures/tables-format-1");
  const expected = JSON.parse(readFileSync(path.join(fixture, "expected.json"), "utf8")) as {
    records: RecordEnvelope[];
  };

  function copyFixture(): string {
    const dir = tempDir();
    for (const name of ["tables.db", "tables.db-wal", "tables.db-shm"])
      cpSync(path.join(fixture, name), path.join(dir, name));
    return dir;
  }

  it("is migrated on first start, row for row with its stamps, its WAL included; the old files move aside", async () => {
    const dir = copyFixture();
    const store = new ClusterStore({ nodeId: "a", clock: () => Date.now() });
    store.table("emails", { merge: "first-writer-wins" });
    const { result, log, persistence } = await open(dir, store, { clusterName: "fixture-format-1" }, 7 * DAY);
    expect(result).toMatchObject({ existed: true, restored: expected.records.length, refused: 0 });
    expect(sorted(store)).toEqual(
      [...expected.records].sort((x, y) => `${x.table}/${x.key}`.localeCompare(`${y.table}/${y.key}`)),
    );
    expect(log.lines.some((l) => l.msg.includes("migrated to format 2"))).toBe(true);
    expect(existsSync(path.join(dir, "tables.db"))).toBe(false);
    expect(readdirSync(path.join(dir, "format-1-before-migration")).sort()).toEqual([
      "tables.db",
      "tables.db-shm",
      "tables.db-wal",
    ]);
    await close(persistence);
    // the next start reads format 2
    expect(await readBack(dir, "fixture-format-1")).toEqual(sorted(store));
  });

  it("is refused untouched (WAL and all) when it is of another cluster, newer, or damaged", async () => {
    const other = copyFixture();
    const before = fingerprint(other);
    const error = await new FilePersistence({ dir: other, clusterName: "not-the-fixture" })
      .start({ store: new ClusterStore({ nodeId: "a" }), log: memoryLogger(), tombstoneTtlMs: DAY })
      .catch((e: unknown) => e);
    expect((error as PersistenceError).problem).toBe("other-cluster");
    expect((error as Error).message).toContain(path.join(other, "tables.db"));
    expect(fingerprint(other)).toEqual(before);

    const damaged = copyFixture();
    const wal = path.join(damaged, "tables.db-wal");
    const bytes = readFileSync(wal);
    bytes.fill(0x5a, 32, 4096 * 3);
    writeFileSync(wal, bytes);
    const beforeDamaged = fingerprint(damaged);
    const refused = await new FilePersistence({ dir: damaged, clusterName: "fixture-format-1" })
      .start({ store: new ClusterStore({ nodeId: "a" }), log: memoryLogger(), tombstoneTtlMs: DAY })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(PersistenceError);
    expect(fingerprint(damaged)).toEqual(beforeDamaged);
  });
});
