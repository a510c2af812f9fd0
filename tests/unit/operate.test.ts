import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ClusterStore, filePersistence } from "../../cluster";
import { SortedStrings } from "../../app/lib/admin/address-index.server";
import { domainMatches } from "../../app/lib/accounts/signup.server";
import { sign, verify } from "../../app/lib/webhooks/sign.server";
import { TablesFile } from "../../cluster/persistence/sqlite";

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
      const file = path.join(dir, "tables.db");
      const store = new ClusterStore({ nodeId: "n1" });
      const persistence = filePersistence({ file, clusterName: "c" });
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
      const reopened = TablesFile.open(file, { clusterName: "c" });
      const rows = [...reopened.slices(100)].flat();
      reopened.close();
      expect(rows.map((r) => `${r.table}/${r.key}`).sort()).toEqual(["sessions/s1", "webhookEvents/e-s1"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a file last in step longer ago than the horizon is refused before a row is read", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "pwdless-stale-"));
    try {
      const file = path.join(dir, "tables.db");
      let now = 1_000_000;
      const first = filePersistence({ file, clusterName: "c", now: () => now });
      await first.start({ store: new ClusterStore({ nodeId: "a" }), log: console, tombstoneTtlMs: 10_000 });
      first.noteContact(now);
      await first.stop();
      now += 9_000;
      const within = filePersistence({ file, clusterName: "c", now: () => now });
      expect(
        (await within.start({ store: new ClusterStore({ nodeId: "a" }), log: console, tombstoneTtlMs: 10_000 }))
          .lastContactAt,
      ).toBe(1_000_000);
      await within.stop();
      now += 2_000;
      const stale = filePersistence({ file, clusterName: "c", now: () => now });
      await expect(
        stale.start({ store: new ClusterStore({ nodeId: "a" }), log: console, tombstoneTtlMs: 10_000 }),
      ).rejects.toMatchObject({
        problem: "stale",
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
