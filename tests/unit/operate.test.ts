import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { acceptTablesFiles, ACCEPTED_FILE, ClusterStore, filePersistence } from "../../cluster";
import { SortedStrings } from "../../app/lib/admin/address-index.server";
import { domainMatches } from "../../app/lib/accounts/signup.server";
import { sign, verify } from "../../app/lib/webhooks/sign.server";

describe("the sorted address index", () => {
  it("keeps order across block splits, deletes and re-adds, and walks from any start", () => {
    const sorted = new SortedStrings();
    const all = Array.from({ length: 5000 }, (_, i) => `u${String((i * 7919) % 5000).padStart(5, "0")}@example.com`);
    for (const a of all) sorted.add(a);
    for (const a of all.slice(0, 100)) sorted.add(a); // idempotent
    expect(sorted.size).toBe(5000);
    for (const a of all.filter((_, i) => i % 3 === 0)) sorted.delete(a);
    const kept = all.filter((_, i) => i % 3 !== 0).sort();
    expect([...sorted.from("")]).toEqual(kept);
    const from = [...sorted.from("u02500")].slice(0, 3);
    expect(from).toEqual(kept.filter((a) => a >= "u02500").slice(0, 3));
  });
});

describe("sign-up domains", () => {
  it("matches a domain exactly and *.domain for its subdomains only", () => {
    expect(domainMatches("example.com", ["example.com"])).toBe(true);
    expect(domainMatches("a.example.com", ["example.com"])).toBe(false);
    expect(domainMatches("a.example.com", ["*.example.com"])).toBe(true);
    expect(domainMatches("b.a.example.com", ["*.example.com"])).toBe(true);
    expect(domainMatches("example.com", ["*.example.com"])).toBe(false);
    expect(domainMatches("badexample.com", ["*.example.com"])).toBe(false);
  });
});

describe("webhook signatures", () => {
  it("are the Standard Webhooks v1 HMAC of id.timestamp.body", () => {
    // the example of the Standard Webhooks specification
    const secret = new Uint8Array(Buffer.from("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "base64"));
    const body = '{"test": 2432232314}';
    expect(sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)).toBe(
      "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    );
    expect(
      verify(
        secret,
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        body,
        "v1,bm90IGl0 v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
      ),
    ).toBe(true);
    expect(
      verify(
        secret,
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265331,
        body,
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
      ),
    ).toBe(false);
  });
});

describe("a change and the event written by its listener", () => {
  it("are committed to the tables file in one transaction", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "pwdless-events-"));
    try {
      const store = new ClusterStore({ nodeId: "n1" });
      const persistence = filePersistence({ dir, clusterName: "c" });
      await persistence.start({ store, log: console, tombstoneTtlMs: 60_000 });
      const sessions = store.table<{ uid: string }>("sessions");
      const events = store.table<{ sid: string }>("webhookEvents");
      sessions.onChange(({ key, value, origin }) => {
        if (value && origin === "local") events.set(`e-${key}`, { sid: key });
      });
      const commitsBefore = persistence.counters.commits;
      sessions.set("s1", { uid: "u1" });
      await persistence.durable();
      expect(persistence.counters.commits - commitsBefore).toBe(1);
      await persistence.stop();
      const again = new ClusterStore({ nodeId: "n1" });
      const reopened = filePersistence({ dir, clusterName: "c" });
      await reopened.start({ store: again, log: console, tombstoneTtlMs: 60_000 });
      const rows = ["sessions", "webhookEvents"].flatMap((t) => [...again.table(t).scan()].map(([k]) => `${t}/${k}`));
      await reopened.stop();
      expect(rows.sort()).toEqual(["sessions/s1", "webhookEvents/e-s1"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a file last in step longer ago than the horizon is refused before a row is read", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "pwdless-stale-"));
    try {
      let now = 1_000_000;
      const file = dir;
      const first = filePersistence({ dir: file, clusterName: "c", now: () => now });
      await first.start({ store: new ClusterStore({ nodeId: "a" }), log: console, tombstoneTtlMs: 10_000 });
      first.noteContact(now);
      await first.stop();
      now += 9_000;
      const within = filePersistence({ dir: file, clusterName: "c", now: () => now });
      expect(
        (await within.start({ store: new ClusterStore({ nodeId: "a" }), log: console, tombstoneTtlMs: 10_000 }))
          .lastContactAt,
      ).toBe(1_000_000);
      await within.stop();
      now += 2_000;
      const before = filesOf(dir);
      const stale = filePersistence({ dir: file, clusterName: "c", now: () => now });
      await expect(
        stale.start({ store: new ClusterStore({ nodeId: "a" }), log: console, tombstoneTtlMs: 10_000 }),
      ).rejects.toMatchObject({
        problem: "stale",
      });
      // refused without a byte of the files changed
      expect(filesOf(dir)).toEqual(before);
      // an operator vouches for them: the next start takes the note as the last contact, keeps it
      // in the files and removes the note
      await acceptTablesFiles(dir, now);
      expect(existsSync(path.join(dir, ACCEPTED_FILE))).toBe(true);
      const accepted = filePersistence({ dir: file, clusterName: "c", now: () => now });
      const result = await accepted.start({
        store: new ClusterStore({ nodeId: "a" }),
        log: console,
        tombstoneTtlMs: 10_000,
      });
      expect(result.lastContactAt).toBe(now);
      await accepted.stop();
      expect(existsSync(path.join(dir, ACCEPTED_FILE))).toBe(false);
      now += 5_000;
      const later = filePersistence({ dir: file, clusterName: "c", now: () => now });
      expect(
        (await later.start({ store: new ClusterStore({ nodeId: "a" }), log: console, tombstoneTtlMs: 10_000 }))
          .lastContactAt,
      ).toBe(now - 5_000);
      await later.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Every file of a folder and its bytes (to show a refusal changed nothing). */
function filesOf(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir).sort()) out[name] = readFileSync(path.join(dir, name)).toString("base64");
  return out;
}

describe("a deleted value", () => {
  it("leaves the tables files at the next snapshot, which the deletion makes due", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "pwdless-erase-"));
    try {
      const store = new ClusterStore({ nodeId: "n1" });
      const persistence = filePersistence({ dir, clusterName: "c", maintenanceMs: 50 });
      await persistence.start({ store, log: console, tombstoneTtlMs: 60_000 });
      const users = store.table<{ email: string }>("users");
      users.set("u-gone", { email: "gone-person@example.com" });
      users.set("u-kept", { email: "kept-person@example.com" });
      await persistence.durable();
      const mentions = (needle: string) =>
        readdirSync(dir).filter((n) => readFileSync(path.join(dir, n)).includes(Buffer.from(needle))).length;
      expect(mentions("gone-person@example.com")).toBeGreaterThan(0);
      const snapshots = persistence.counters.snapshots;
      users.delete("u-gone");
      await persistence.durable();
      // the log still holds the old value until a snapshot replaces it
      for (let i = 0; i < 200 && persistence.counters.snapshots === snapshots; i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(persistence.counters.snapshots).toBeGreaterThan(snapshots);
      expect(mentions("gone-person@example.com")).toBe(0);
      expect(mentions("kept-person@example.com")).toBeGreaterThan(0);
      await persistence.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
