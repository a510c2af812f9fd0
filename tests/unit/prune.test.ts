// Expired sessions, old revocations and old link records are deleted, and so leave the tables file.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ClusterStore, FilePersistence } from "#cluster";
import { LinkUses } from "#app/lib/sign-in/email-link/link-uses.server.ts";
import { SessionStore } from "#app/lib/session/sessions.server.ts";
import { fakeClusterPort } from "#tests/support/fake-cluster.ts";
import { memoryLogger } from "./cluster-support";

const HOUR = 3600_000;
const DAY = 24 * HOUR;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function world(nodeId = "n1") {
  const clock = { now: 1_700_000_000_000 };
  const now = () => clock.now;
  const store = new ClusterStore({ nodeId, clock: now, tombstoneTtlMs: DAY });
  const port = fakeClusterPort(store);
  const log = { info() {}, warn() {}, error() {}, child: () => log } as never;
  return { clock, now, store, port, log };
}

describe("pruning", () => {
  it("deletes expired and revoked sessions it created, and others' a day after they expired", () => {
    const { clock, store, port } = world();
    const sessions = new SessionStore(port, 30, () => clock.now, 90);
    const mine = sessions.createSession("00000000-0000-4000-8000-000000000001", { method: "email", userAgent: "t" });
    const revoked = sessions.createSession("00000000-0000-4000-8000-000000000002", { method: "email", userAgent: "t" });
    const live = sessions.createSession("00000000-0000-4000-8000-000000000003", { method: "email", userAgent: "t" });
    sessions.revoke(revoked.sid, "logout");
    const theirs = { ...mine, sid: "00000000-0000-4000-8000-0000000000aa", createdOn: "n2" };
    store.applyRemote({ table: "sessions", key: theirs.sid, value: theirs, stamp: { t: clock.now, c: 0, n: "n2" } });
    const table = store.table("sessions");

    expect(sessions.prune()).toBe(1); // the revoked one
    expect(table.has(revoked.sid)).toBe(false);
    expect(sessions.isRevoked(revoked.sid)).toBe(true); // the revocation stays: a copy of the cookie stays refused

    clock.now += 30 * DAY; // mine and theirs expire; live is touched in between and slides
    sessions.touch({ ...live, lastUsedAt: clock.now - 2 * HOUR });
    expect(sessions.prune()).toBe(1);
    expect(table.has(mine.sid)).toBe(false);
    expect(table.has(theirs.sid)).toBe(true); // n2's to delete, for a day
    clock.now += DAY;
    expect(sessions.prune()).toBe(1);
    expect(table.has(theirs.sid)).toBe(false);
    expect(table.has(live.sid)).toBe(true);

    clock.now += 61 * DAY; // past the absolute limit of any session revoked back then
    sessions.prune();
    expect(sessions.isRevoked(revoked.sid)).toBe(false);
  });

  it("deletes link records once no link they could stop can still be opened", () => {
    const { clock, port, log } = world();
    const uses = new LinkUses(port, 15 * 60_000, () => clock.now, log);
    const ref = { i: "link-0001", c: clock.now, n: "n1" };
    return uses.consume("a@example.com", ref).then(() => {
      expect(uses.peek("a@example.com", ref)).toBe("used");
      clock.now += 30 * 60_000;
      expect(uses.prune()).toBe(0);
      clock.now += 2 * HOUR;
      expect(uses.prune()).toBe(2); // the use and "newest used" of the address
      const later = { i: "link-0002", c: clock.now, n: "n1" };
      expect(uses.peek("a@example.com", later)).toBe("ok");
    });
  });

  it("takes a pruned session out of the tables file once its tombstone is collected", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "pwdless-prune-"));
    dirs.push(dir);
    const { clock, store, port } = world();
    const persistence = new FilePersistence({ dir, clusterName: "unit", now: () => clock.now });
    await persistence.start({ store, log: memoryLogger(), tombstoneTtlMs: DAY });
    const sessions = new SessionStore(port, 30, () => clock.now, 90);
    const row = sessions.createSession("00000000-0000-4000-8000-000000000001", { method: "email", userAgent: "t" });
    await persistence.durable();
    clock.now += 31 * DAY;
    sessions.prune();
    await persistence.durable();
    clock.now += 2 * DAY;
    expect(store.collectTombstones()).toBe(1);
    await persistence.maintain();
    await persistence.stop();
    const reader = new ClusterStore({ nodeId: "reader", clock: () => clock.now });
    const again = new FilePersistence({ dir, clusterName: "unit" });
    await again.start({ store: reader, log: memoryLogger(), tombstoneTtlMs: DAY });
    await again.stop();
    expect(reader.stampOf("sessions", row.sid)).toBeUndefined();
  });
});
