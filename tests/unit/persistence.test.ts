// The tables file: what the store applies is committed and read back through the same merge, and
// a file the node must not use is refused, untouched.
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  ClusterStore,
  ClusterUnavailableError,
  compareStamps,
  FilePersistence,
  PersistenceError,
  type FilePersistenceOptions,
} from "#cluster";
import { memoryLogger } from "./cluster-support";

const sqlite = createRequire(import.meta.url)("node:sqlite") as typeof import("node:sqlite");
const DAY = 24 * 60 * 60 * 1000;

const dirs: string[] = [];
const opened: FilePersistence[] = [];
afterEach(async () => {
  for (const p of opened.splice(0)) await p.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempFile(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "pwdless-tables-"));
  dirs.push(dir);
  return path.join(dir, "tables.db");
}

async function open(
  file: string,
  store: ClusterStore,
  options: Partial<FilePersistenceOptions> = {},
  tombstoneTtlMs = 7 * DAY,
) {
  const persistence = new FilePersistence({ file, clusterName: "unit", maintenanceMs: 3_600_000, ...options });
  const result = await persistence.start({ store, log: memoryLogger(), tombstoneTtlMs });
  opened.push(persistence);
  return { persistence, result };
}

async function close(persistence: FilePersistence) {
  opened.splice(opened.indexOf(persistence), 1);
  await persistence.stop();
}

const sha = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

describe("the tables file", () => {
  it("commits local, gossiped and caught-up records, and reads them back with their stamps", async () => {
    const file = tempFile();
    const store = new ClusterStore({ nodeId: "a", clock: () => 1_000 });
    const { persistence, result } = await open(file, store);
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
    await persistence.durable();
    // one event-loop turn, one transaction
    expect(persistence.counters.commits).toBe(1);
    await close(persistence);

    const again = new ClusterStore({ nodeId: "a", clock: () => 2_000 });
    const seen: string[] = [];
    again.onApplied((r, origin) => seen.push(`${origin}:${r.table}/${r.key}`));
    const reopened = await open(file, again);
    expect(reopened.result).toMatchObject({ existed: true, restored: 4, refused: 0 });
    expect([...again.records()].sort((x, y) => x.key.localeCompare(y.key))).toEqual([
      { table: "sessions", key: "s1", value: { uid: "u3" }, stamp: { t: 950, c: 2, n: "c" } },
      { table: "users", key: "u1", value: { email: "one@example.com" }, stamp: { t: 1_000, c: 0, n: "a" } },
      { table: "users", key: "u2", value: null, stamp: { t: 1_000, c: 2, n: "a" } },
      { table: "users", key: "u3", value: { email: "three@example.com" }, stamp: { t: 900, c: 0, n: "b" } },
    ]);
    expect(seen.every((s) => s.startsWith("restore:"))).toBe(true);
    // restored rows are not written again, and the clock moved past them: new writes win
    await reopened.persistence.durable();
    expect(reopened.persistence.counters.recordsCommitted).toBe(0);
    again.table("users").set("u1", { email: "new@example.com" });
    expect(compareStamps(again.stampOf("users", "u1")!, { t: 1_000, c: 2, n: "a" })).toBe(1);
  });

  it("restores through the merge: newer versions, tombstones and first claims still win", async () => {
    const file = tempFile();
    const store = new ClusterStore({ nodeId: "a", clock: () => 5_000 });
    store.table("emails", { merge: "first-writer-wins" });
    const { persistence } = await open(file, store);
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

    // a peer's copy got here first (e.g. a second restore after a catch-up): the merge decides
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
    await open(file, next);
    expect(next.table("emails").get("x@example.com")).toEqual({ uid: "first" });
    expect(next.table("users").has("gone")).toBe(false);
    expect(next.table("users").get("kept")).toEqual({ v: "peer" });
  });

  it("trusts rows restored from its own file when the app opens a table, and checks what peers sent before", () => {
    const store = new ClusterStore({ nodeId: "a", clock: () => 5_000 });
    const stamp = { t: 100, c: 0, n: "b" };
    store.applyRemote({ table: "users", key: "restored", value: { ok: false }, stamp }, "restore");
    store.applyRemote({ table: "users", key: "gossiped", value: { ok: false }, stamp }, "remote");
    store.applyRemote({ table: "users", key: "pulled", value: { ok: true }, stamp }, "sync");
    const parsed: unknown[] = [];
    const users = store.table<{ ok: boolean }>("users", {
      schema: {
        parse(input) {
          parsed.push(input);
          if (!(input as { ok: boolean }).ok) throw new Error("invalid");
          return input as { ok: boolean };
        },
      },
    });
    expect(parsed).toHaveLength(2);
    expect(users.has("gossiped")).toBe(false);
    expect(users.has("pulled")).toBe(true);
    expect(users.has("restored")).toBe(true);
  });

  it("keeps only the newest version of a key, and commits what is pending on stop", async () => {
    const file = tempFile();
    const store = new ClusterStore({ nodeId: "a", clock: () => 1_000 });
    const { persistence } = await open(file, store);
    const t = store.table<{ n: number }>("things");
    for (let n = 0; n < 100; n++) t.set("k", { n });
    await close(persistence); // no durable(): stop flushes
    const db = new sqlite.DatabaseSync(file, { readOnly: true });
    const rows = db.prepare("SELECT key, value FROM rows").all();
    db.close();
    expect(rows).toEqual([{ key: "k", value: JSON.stringify({ n: 99 }) }]);
  });

  it("rejects durable() with a disk error when the file cannot grow, keeps the rows pending, and recovers", async () => {
    const file = tempFile();
    const store = new ClusterStore({ nodeId: "a", clock: () => 1_000 });
    const log = memoryLogger();
    const persistence = new FilePersistence({ file, clusterName: "unit", maxBytes: 64 * 1024, retryMs: 10 });
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
    // the disk has room again once the big rows are deleted (tombstones are small)
    for (let i = 0; i < 40; i++) blobs.delete(`big-${i}`);
    await persistence.durable();
    expect(log.lines.some((l) => l.msg.includes("takes writes again"))).toBe(true);
  });

  it("deletes old tombstones from the file and does not grow under churn", async () => {
    const file = tempFile();
    let now = 1_000_000;
    const store = new ClusterStore({ nodeId: "a", clock: () => now, tombstoneTtlMs: DAY });
    const { persistence } = await open(file, store, { now: () => now }, DAY);
    const sessions = store.table<{ uid: string; pad: string }>("sessions");
    const sizes: number[] = [];
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 2_000; i++) sessions.set(`r${round}-${i}`, { uid: `u${i}`, pad: "p".repeat(200) });
      await persistence.durable();
      for (let i = 0; i < 2_000; i++) sessions.delete(`r${round}-${i}`);
      await persistence.durable();
      now += 2 * DAY;
      store.collectTombstones();
      const result = persistence.maintain();
      expect(result.tombstonesDeleted).toBe(2_000);
      sizes.push(statSync(file).size);
    }
    const db = new sqlite.DatabaseSync(file, { readOnly: true });
    expect(db.prepare("SELECT count(*) AS n FROM rows").get()).toEqual({ n: 0 });
    db.close();
    // the file keeps roughly its first round's size instead of adding a round's worth each time
    expect(Math.max(...sizes.slice(1))).toBeLessThanOrEqual(sizes[0]! * 1.5);
    expect(statSync(`${file}-wal`).size).toBe(0);
  });
});

describe("a tables file the node must not use", () => {
  async function refusal(file: string, clusterName = "unit"): Promise<PersistenceError> {
    const before = sha(file);
    const persistence = new FilePersistence({ file, clusterName });
    const error = await persistence
      .start({ store: new ClusterStore({ nodeId: "a" }), log: memoryLogger(), tombstoneTtlMs: DAY })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(PersistenceError);
    expect(sha(file)).toBe(before);
    expect((error as Error).message).not.toContain("\n");
    return error as PersistenceError;
  }

  async function written(file: string): Promise<void> {
    const store = new ClusterStore({ nodeId: "a", clock: () => 1_000 });
    const { persistence } = await open(file, store);
    for (let i = 0; i < 500; i++)
      store.table("users").set(`u${i}`, { email: `u${i}@example.com`, pad: "z".repeat(100) });
    await close(persistence);
  }

  it("refuses garbage, naming the file and the way back", async () => {
    const file = tempFile();
    writeFileSync(file, Buffer.alloc(8192, 7));
    const error = await refusal(file);
    expect(error.problem).toBe("corrupt");
    expect(error.message).toContain(file);
    expect(error.message).toMatch(/restore a backup/);
  });

  it("refuses a file whose pages are damaged", async () => {
    const file = tempFile();
    await written(file);
    const bytes = readFileSync(file);
    // keep the header and the first pages (schema, meta); scramble the row pages
    bytes.fill(0xa5, 5 * 4096, bytes.length - 4096);
    writeFileSync(file, bytes);
    expect((await refusal(file)).problem).toBe("corrupt");
  });

  it("refuses a file of a newer format", async () => {
    const file = tempFile();
    await written(file);
    const db = new sqlite.DatabaseSync(file);
    db.exec("UPDATE meta SET value = '99' WHERE key = 'format'");
    db.close();
    const error = await refusal(file);
    expect(error.problem).toBe("newer-format");
    expect(error.message).toMatch(/format 99/);
  });

  it("refuses a file of another cluster", async () => {
    const file = tempFile();
    await written(file);
    const error = await refusal(file, "another");
    expect(error.problem).toBe("other-cluster");
    expect(error.message).toContain("CLUSTER_NAME=unit");
  });

  it("refuses an SQLite file that is not a tables file", async () => {
    const file = tempFile();
    const db = new sqlite.DatabaseSync(file);
    db.exec("CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('mine')");
    db.close();
    expect((await refusal(file)).problem).toBe("foreign");
  });
});
