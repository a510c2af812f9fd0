import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { generateKeyPair } from "@libp2p/crypto/keys";
import { multiaddr } from "@multiformats/multiaddr";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { createClusterLibp2p } from "../../cluster/libp2p";
import { names } from "../../cluster/wire";
import { ClusterRequestError, compareStamps, type Cluster } from "../../cluster";
import { connectedIds, isMeshComplete, TestCluster, waitFor } from "./cluster-support";

let world: TestCluster;
afterEach(async () => {
  await world.cleanup();
});

describe("cluster nodes on one host", () => {
  it("find each other through the local registry with default settings, and replicate a write to all", async () => {
    world = new TestCluster();
    // default timings: what `npm start` twice (or thrice) gives; how fast is bench:cluster's figure
    const a = await world.start({}, undefined);
    const b = await world.start({}, undefined);
    const c = await world.start({}, undefined);
    await waitFor(() => isMeshComplete([a, b, c]), "three nodes connected", 5_000);

    const users = a.store.table<{ email: string }>("users");
    users.set("u1", { email: "ann@example.test" });
    await waitFor(
      () => [b, c].every((n) => n.store.table<{ email: string }>("users").get("u1")?.email === "ann@example.test"),
      "the write on A seen by B and C",
      5_000,
    );
    users.delete("u1");
    await waitFor(() => [b, c].every((n) => !n.store.table("users").has("u1")), "the delete seen by B and C", 5_000);

    const status = b.status();
    expect(JSON.parse(JSON.stringify(status))).toEqual(status);
    expect(status.nodeId).toBe(b.nodeId);
    expect(status.clusterName).toBe(world.clusterName);
    expect(status.counters.messagesIn).toBeGreaterThan(0);
    expect(status.peers.map((p) => p.id).sort()).toEqual([a.nodeId, c.nodeId].sort());
    expect(status.replicationLagMs.samples).toBeGreaterThan(0);
  });

  it("lets a late joiner catch up on what was written before it came, and then report ready", async () => {
    world = new TestCluster();
    const a = await world.start();
    expect(a.isReady()).toBe(false);
    const sessions = a.store.table<{ user: string; n: number }>("sessions");
    for (let i = 0; i < 2_000; i += 1) sessions.set(`s${i}`, { user: `u${i % 50}`, n: i });
    for (let i = 0; i < 100; i += 1) sessions.delete(`s${i}`);

    const b = await world.start();
    expect(b.isReady()).toBe(false);
    await waitFor(() => b.isReady(), "B ready after its first catch-up", 10_000);
    const mirror = b.store.table<{ user: string; n: number }>("sessions");
    await waitFor(() => mirror.size === 1_900, "B holds the 1900 live sessions", 10_000);
    expect(mirror.get("s1999")).toEqual({ user: "u49", n: 1999 });
    expect(mirror.has("s5")).toBe(false);
    expect(b.store.stampOf("sessions", "s5")).toEqual(a.store.stampOf("sessions", "s5"));
    expect(b.status().counters.recordsPulled).toBeGreaterThanOrEqual(2_000);
    await waitFor(() => a.isReady(), "A ready once it has synced with B", 10_000);
  });

  it("keeps a node with another cluster key out: no connection, no data", async () => {
    world = new TestCluster();
    const a = await world.start();
    const b = await world.start();
    await waitFor(() => isMeshComplete([a, b]), "A and B connected");
    // same name and registry folder, so it finds them, but its key differs
    const intruder = await world.start({ clusterKey: new Uint8Array(32).fill(7) });
    a.store.table("users").set("secret", { email: "x@example.test" });
    await waitFor(() => b.store.table("users").has("secret"), "B has the write");
    // it keeps trying (registry entries are live), and keeps failing
    await waitFor(
      () => world.logs.some((l) => l.msg === "cluster: dial failed" && JSON.stringify(l.fields).includes(a.nodeId)),
      "the intruder's dial to A failed",
    );
    expect(connectedIds(intruder)).toEqual([]);
    expect(connectedIds(a)).not.toContain(intruder.nodeId);
    expect(intruder.store.table("users").has("secret")).toBe(false);
    expect(intruder.isReady()).toBe(false);
  });

  it("keeps its peer id across a restart with the same data dir", async () => {
    world = new TestCluster();
    const dataDir = await world.tempDir();
    const first = await world.start({ dataDir });
    const id = first.nodeId;
    expect((await stat(path.join(dataDir, "node-key"))).mode & 0o777).toBe(0o600);
    const registry = await world.registry();
    expect(await readdir(registry)).toEqual([`${id}.json`]);
    await world.stop(first);
    expect(await readdir(registry)).toEqual([]);
    const second = await world.start({ dataDir });
    expect(second.nodeId).toBe(id);
    expect(second.store.nodeId).toBe(id);
  });

  it("answers requests, and fails them with a code when it cannot", async () => {
    world = new TestCluster();
    const a = await world.start();
    const b = await world.start();
    await waitFor(() => isMeshComplete([a, b]), "A and B connected");
    b.handle("echo", async (body, from) => ({ body, from }));
    b.handle("slow", () => new Promise((resolve) => setTimeout(() => resolve("late"), 3_000)));
    b.handle("boom", async () => {
      throw new Error("kaboom");
    });

    await expect(a.request(b.nodeId, "echo", { hello: [1, 2] })).resolves.toEqual({
      body: { hello: [1, 2] },
      from: a.nodeId,
    });
    await expect(a.request(a.nodeId, "echo", 1)).rejects.toMatchObject({ code: "remote-error" });
    a.handle("echo", async (body) => body);
    await expect(a.request(a.nodeId, "echo", { self: true })).resolves.toEqual({ self: true });

    const codeOf = async (promise: Promise<unknown>) => {
      try {
        await promise;
        return "resolved";
      } catch (error) {
        expect(error).toBeInstanceOf(ClusterRequestError);
        return (error as ClusterRequestError).code;
      }
    };
    const begun = Date.now();
    expect(await codeOf(a.request(b.nodeId, "slow", null, 300))).toBe("timeout");
    expect(Date.now() - begun).toBeLessThan(2_000);
    expect(await codeOf(a.request(b.nodeId, "boom", null))).toBe("remote-error");
    expect(await codeOf(a.request(b.nodeId, "nobody-home", null))).toBe("remote-error");
    const stranger = await world.start({ discovery: "none" });
    const strangerId = stranger.nodeId;
    await world.stop(stranger);
    expect(await codeOf(a.request(strangerId, "echo", null, 2_000))).toBe("unreachable");
    expect(await codeOf(a.request("not-a-peer-id", "echo", null))).toBe("unreachable");
  });
});

describe("cluster discovery without the local registry", () => {
  it("reaches every member from one static peer, and heals a partition both ways", async () => {
    world = new TestCluster();
    // two nodes that cannot find anyone: a partition
    const a = await world.start({ discovery: "none" });
    const b = await world.start({ discovery: "none" });
    const users = (n: Cluster) => n.store.table<{ email: string }>("users");
    const claims = (n: Cluster) => n.store.table<string>("emails", { merge: "first-writer-wins" });
    users(a).set("only-a", { email: "a@example.test" });
    users(b).set("only-b", { email: "b@example.test" });
    users(a).set("both", { email: "from-a@example.test" });
    claims(a).set("ann@example.test", "user-on-a");
    users(b).set("both", { email: "from-b@example.test" });
    claims(b).set("ann@example.test", "user-on-b");
    expect(connectedIds(a)).toEqual([]);
    const laterWriter =
      compareStamps(a.store.stampOf("users", "both")!, b.store.stampOf("users", "both")!) > 0 ? "a" : "b";
    const firstClaimer =
      compareStamps(a.store.stampOf("emails", "ann@example.test")!, b.store.stampOf("emails", "ann@example.test")!) < 0
        ? "a"
        : "b";

    // C knows A and B and bridges them; D knows only C. Announcements do the rest: A and B
    // connect to each other, and D to both.
    const aAddr = a.status().addresses[0];
    const bPort = /\/tcp\/(\d+)/.exec(b.status().addresses[0])?.[1];
    const c = await world.start({ discovery: "none", peers: [aAddr, `127.0.0.1:${bPort}`] });
    const d = await world.start({ discovery: "none", peers: [c.status().addresses[0]] });
    await waitFor(() => isMeshComplete([a, b, c, d]), "all four connected", 15_000);

    const expected = (n: Cluster) =>
      JSON.stringify({
        users: [...users(n).scan()].sort(([x], [y]) => x.localeCompare(y)),
        claims: [...claims(n).scan()],
        stamp: n.store.stampOf("users", "both"),
      });
    await waitFor(() => new Set([a, b, c, d].map(expected)).size === 1, "all four hold the same rows", 15_000);
    expect(users(a).get("only-b")).toEqual({ email: "b@example.test" });
    expect(users(b).get("only-a")).toEqual({ email: "a@example.test" });
    // the greater stamp wins "both"; the first claim keeps the email
    expect(users(c).get("both")).toEqual({ email: `from-${laterWriter}@example.test` });
    expect(claims(d).get("ann@example.test")).toBe(`user-on-${firstClaimer}`);
  });

  it("finds peers by a DNS name", async () => {
    world = new TestCluster();
    const a = await world.start({ discovery: "none" });
    const port = /\/tcp\/(\d+)/.exec(a.status().addresses[0])?.[1];
    const b = await world.start({ discovery: "none", dns: `localhost:${port}` });
    await waitFor(() => isMeshComplete([a, b]), "B found A by name", 10_000);
  });
});

describe("gossip from a key holder that misbehaves", () => {
  it("is rejected and counted by reason; the node stays up and its table unchanged", async () => {
    world = new TestCluster();
    const a = await world.start();
    const b = await world.start();
    await waitFor(() => isMeshComplete([a, b]), "A and B connected");
    const users = a.store.table("users", { schema: z.object({ email: z.string().email() }) });

    // a bare libp2p node holding the key: it can connect and publish, but has no store
    const config = await world.config({ discovery: "none" });
    const rogue = await createClusterLibp2p({
      config,
      privateKey: await generateKeyPair("Ed25519"),
      names: names(world.clusterName),
    });
    await rogue.start();
    try {
      const rogueId = rogue.peerId.toString();
      const topic = names(world.clusterName).recordsTopic;
      await rogue.dial(multiaddr(a.status().addresses[0]));
      await waitFor(
        () => rogue.services.pubsub.getSubscribers(topic).some((p) => p.toString() === a.nodeId),
        "the rogue sees A's subscription",
      );
      const publish = (payload: unknown) =>
        rogue.services.pubsub.publish(
          topic,
          payload instanceof Uint8Array ? payload : new TextEncoder().encode(JSON.stringify(payload)),
        );
      const record = (key: string, value: unknown, stamp: Partial<{ t: number; c: number; n: string }> = {}) => ({
        table: "users",
        key,
        value,
        stamp: { t: Date.now(), c: 0, n: rogueId, ...stamp },
      });

      await publish(new TextEncoder().encode("{not json"));
      await publish({ v: 2, records: [record("k1", { email: "v2@example.test" })] });
      await publish({ v: 1, records: [{ ...record("k2", { email: "x@example.test" }), table: "NOT A TABLE" }] });
      await publish({ v: 1, records: [record("k3", { email: "forged@example.test" }, { n: b.nodeId })] });
      await publish({ v: 1, records: [record("k4", { email: "future@example.test" }, { t: Date.now() + 3_600_000 })] });
      await publish({ v: 1, records: [record("k5", { email: "big@example.test", pad: "x".repeat(70_000) })] });
      await publish({ v: 1, records: [record("k6", { email: "not an email" })] });

      await waitFor(() => {
        const rejected = a.status().counters.rejected;
        return (
          rejected["malformed-json"] === 1 &&
          rejected["unknown-version"] === 1 &&
          rejected["malformed"] === 1 &&
          rejected["foreign-stamp"] === 1 &&
          rejected["clock-skew"] === 1 &&
          rejected["too-large"] === 1 &&
          rejected["record-rejected"] === 1
        );
      }, "A counted each rejection by its reason");
      expect(users.size).toBe(0);
      expect(a.store.tableNames()).not.toContain("NOT A TABLE");

      // still up: B's writes arrive, requests are answered
      b.store.table("users").set("fine", { email: "fine@example.test" });
      await waitFor(() => users.has("fine"), "A still applies B's writes");
      a.handle("ping", async () => "pong");
      await expect(b.request(a.nodeId, "ping", null)).resolves.toBe("pong");
    } finally {
      await rogue.stop();
    }
  });
});
