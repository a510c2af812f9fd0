/**
 * The Redis transport when Redis itself misbehaves, against real redis-servers: restarted empty
 * (every row and claim comes back from the nodes before they are ready), restarted from an older
 * snapshot (the newer rows come back), stalled twice (not ready both times), a replica that must
 * confirm writes (WAIT), and a Redis user that lacks a permission (one line at start).
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createClient } from "redis";
import { afterAll, describe, expect, it } from "vitest";
import { RedisStartError, startCluster, type Cluster, type RedisSettings } from "../../cluster";
import { ClusterUnavailableError } from "../../cluster/errors";
import { REQUIRED_ACL } from "../../cluster/redis/errors";
import { redisNames } from "../../cluster/redis/scripts";
import { startRedisServer, stopRedisServers, type TestRedisServer } from "../support/redis";
import { memoryLogger, waitFor } from "./cluster-support";

const dirs: string[] = [];
const nodes: Cluster[] = [];

async function redisNode(
  clusterName: string,
  redis: { url: string; timeoutMs?: number; waitReplicas?: RedisSettings["waitReplicas"] },
  heartbeatMs = 300,
): Promise<Cluster> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "pwdless-redis-unit-"));
  dirs.push(dataDir);
  const node = await startCluster(
    {
      clusterName,
      clusterKey: randomBytes(32),
      dataDir,
      host: "127.0.0.1",
      port: 0,
      peers: [],
      discovery: "none",
      redis: { timeoutMs: 1000, ...redis },
    },
    memoryLogger(),
    { tables: { claims: { merge: "first-writer-wins" } }, redisTimings: { heartbeatMs } },
  );
  nodes.push(node);
  return node;
}

function adminClient(redis: TestRedisServer) {
  return createClient({ url: redis.url });
}

async function admin<T>(redis: TestRedisServer, use: (client: ReturnType<typeof adminClient>) => Promise<T>) {
  const client = adminClient(redis);
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.close();
  }
}

async function rowKeys(redis: TestRedisServer, clusterName: string): Promise<Set<string>> {
  return admin(redis, async (client) => {
    const keys = new Set<string>();
    for await (const page of client.scanIterator({ MATCH: `pwdless-gs:${clusterName}:{*}:row:*`, COUNT: 1000 })) {
      for (const key of page) keys.add(key);
    }
    return keys;
  });
}

const name = () => `u-${randomBytes(3).toString("hex")}`;

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  await stopRedisServers();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe("a Redis that lost its data", () => {
  it("restarted empty: every row and claim is back in Redis before a node says ready; first claims stay first", async () => {
    const redis = await startRedisServer();
    const cluster = name();
    const [a, b, c] = [
      await redisNode(cluster, { url: redis.url }),
      await redisNode(cluster, { url: redis.url }),
      await redisNode(cluster, { url: redis.url }),
    ];
    for (let i = 0; i < 60; i += 1) [a, b, c][i % 3]!.store.table<number>("things").set(`row-${i}`, i);
    a.store.table<string>("claims").set("alice@example.com", "uid-a");
    b.store.table("things").delete("row-1");
    expect(await b.atomics.claimOnce("link", "used-link", 60_000)).toBe(true);
    await Promise.all([a.durable(), b.durable(), c.durable()]);
    await waitFor(
      () => c.store.table("claims").has("alice@example.com") && c.store.stampOf("things", "row-1")?.n === b.nodeId,
      "C has every row",
    );
    const before = await rowKeys(redis, cluster);
    expect(before.size).toBeGreaterThanOrEqual(62);

    await redis.restartEmpty();
    expect((await rowKeys(redis, cluster)).size).toBe(0);
    // from the moment a node says ready again, Redis holds every row it held before
    await waitFor(
      () => [a, b, c].every((n) => !n.isReady()) || [a, b, c].some((n) => n.status().redis!.reseeds.count > 0),
      "the nodes to notice",
    );
    let checked = 0;
    await waitFor(
      async () => {
        const ready = [a, b, c].filter((n) => n.isReady());
        if (ready.length > 0) {
          const now = await rowKeys(redis, cluster);
          for (const key of before) expect(now.has(key), `${key} back before a node is ready`).toBe(true);
          checked += 1;
        }
        return ready.length === 3;
      },
      "every node ready again",
      20_000,
      20,
    );
    expect(checked).toBeGreaterThan(0);
    expect(a.status().redis!.reseeds.count + b.status().redis!.reseeds.count).toBeGreaterThan(0);

    // a node started now reads everything back from Redis: rows, the deletion, the first claim
    const d = await redisNode(cluster, { url: redis.url });
    expect(d.store.table<number>("things").get("row-59")).toBe(59);
    expect(d.store.table("things").has("row-1")).toBe(false);
    expect(d.store.table<string>("claims").get("alice@example.com")).toBe("uid-a");
    // the single-use claim survived: nobody can take it again, on any node
    expect(await d.atomics.claimOnce("link", "used-link", 60_000)).toBe(false);
    expect(await c.atomics.claimOnce("link", "used-link", 60_000)).toBe(false);
    // a later claim by another writer still loses to the first one
    expect(d.store.table<string>("claims").set("alice@example.com", "uid-d")).toBe(false);
  });

  it("restarted from an older snapshot: the rows written since come back from the nodes", async () => {
    // no AOF: a restart reads the last RDB snapshot, as after a crash with infrequent snapshots
    const redis = await startRedisServer({ args: ["--appendonly", "no"] });
    const cluster = name();
    const a = await redisNode(cluster, { url: redis.url });
    const b = await redisNode(cluster, { url: redis.url });
    a.store.table("things").set("old", 1);
    await a.durable();
    await admin(redis, (client) => client.sendCommand(["SAVE"]));
    for (let i = 0; i < 20; i += 1) b.store.table("things").set(`new-${i}`, i);
    await b.durable();
    await waitFor(() => a.store.table("things").has("new-19"), "A has the new rows");

    await redis.stop("SIGKILL");
    await redis.start();
    await waitFor(
      async () => (await rowKeys(redis, cluster)).size >= 21 && a.isReady() && b.isReady(),
      "the new rows back in Redis",
      20_000,
    );
    // put back once: the heartbeats after it find Redis where they expect it
    const reseeds = () => a.status().redis!.reseeds.count + b.status().redis!.reseeds.count;
    const settled = reseeds();
    expect(settled).toBeGreaterThan(0);
    const after = Date.now() + 1000;
    await waitFor(() => (a.status().redis!.lastHealthyAt ?? 0) > after, "three more heartbeats");
    expect(reseeds()).toBe(settled);
    const late = await redisNode(cluster, { url: redis.url });
    expect(late.store.table("things").get("new-19")).toBe(19);
    expect(late.store.table("things").get("old")).toBe(1);
  });
});

describe("the key layout before buckets", () => {
  it("is read at start, written into the buckets, then deleted", async () => {
    const redis = await startRedisServer();
    const cluster = name();
    const record = {
      table: "things",
      key: "legacy",
      value: { kept: true },
      stamp: { t: Date.now(), c: 0, n: "old-node" },
    };
    const legacyKey = `pwdless-gs:${cluster}:row:things:legacy`;
    await admin(redis, (client) =>
      client.hSet(legacyKey, { t: String(record.stamp.t), c: "0", n: "old-node", r: JSON.stringify(record) }),
    );
    const a = await redisNode(cluster, { url: redis.url });
    expect(a.store.table("things").get("legacy")).toEqual({ kept: true });
    await waitFor(async () => (await admin(redis, (client) => client.exists(legacyKey))) === 0, "the old key deleted");
    expect(await admin(redis, (client) => client.exists(redisNames(cluster).row("things", "legacy")))).toBe(1);
    const b = await redisNode(cluster, { url: redis.url });
    expect(b.store.table("things").get("legacy")).toEqual({ kept: true });
  });
});

describe("readiness follows Redis's real health", () => {
  it("a second stall right after a first: not ready both times, ready again after each", async () => {
    const redis = await startRedisServer();
    const a = await redisNode(name(), { url: redis.url, timeoutMs: 300 });
    for (let round = 0; round < 2; round += 1) {
      redis.pause();
      try {
        await waitFor(() => !a.isReady(), `not ready during stall ${round + 1}`, 15_000);
        a.store.table("things").set(`during-${round}`, round);
        await expect(a.durable()).rejects.toBeInstanceOf(ClusterUnavailableError);
      } finally {
        redis.resume();
      }
      await waitFor(() => a.isReady(), `ready after stall ${round + 1}`, 20_000);
    }
    await waitFor(async () => {
      try {
        await a.durable();
        return true;
      } catch {
        return false;
      }
    }, "the writes made during the stalls stored");
  });
});

describe("replicas confirm writes (WAIT)", () => {
  it("waits for the replica; past it, auto counts the shortfall and strict answers unavailable", async () => {
    const primary = await startRedisServer();
    const replica = await startRedisServer({ args: ["--replicaof", "127.0.0.1", String(primary.port)] });
    await waitFor(
      async () => /slave0:.*state=online/.test(await admin(primary, (client) => client.info("replication"))),
      "the replica in sync",
      20_000,
    );
    const cluster = name();
    const auto = await redisNode(cluster, { url: primary.url, timeoutMs: 600 });
    const strict = await redisNode(cluster, { url: primary.url, timeoutMs: 600, waitReplicas: 1 });
    await waitFor(() => auto.status().redis!.waitReplicas.effective === 1, "auto waits for one replica");
    expect(auto.status().redis!.topology.primaries[0]!.replicas).toEqual([
      expect.objectContaining({ address: `127.0.0.1:${replica.port}`, state: "online" }),
    ]);
    auto.store.table("things").set("confirmed", 1);
    await auto.durable();
    expect(auto.status().redis!.waitReplicas.shortfalls).toBe(0);
    // the write is on the replica by the time it is acknowledged
    expect(await admin(replica, (client) => client.exists(redisNames(cluster).row("things", "confirmed")))).toBe(1);

    replica.pause();
    try {
      auto.store.table("things").set("alone", 1);
      await auto.durable();
      expect(auto.status().redis!.waitReplicas.shortfalls).toBeGreaterThan(0);
      strict.store.table("things").set("strict", 1);
      await expect(strict.durable()).rejects.toBeInstanceOf(ClusterUnavailableError);
    } finally {
      replica.resume();
    }
    await waitFor(
      async () => {
        try {
          strict.store.table("things").set("strict-after", 1);
          await strict.durable();
          return true;
        } catch {
          return false;
        }
      },
      "strict writes acknowledged once the replica confirms again",
      20_000,
    );
  });
});

describe("Redis permissions at start", () => {
  it("a user without +@scripting is refused with one line; the documented ACL is enough", async () => {
    const redis = await startRedisServer();
    await admin(redis, async (client) => {
      await client.sendCommand(["ACL", "SETUSER", "noscript", "on", ">pw", "~*", "&*", "+@all", "-@scripting"]);
      await client.sendCommand(["ACL", "SETUSER", "pwdless", "on", ">pw", ...REQUIRED_ACL.split(" ")]);
    });
    const url = (user: string) => `redis://${user}:pw@127.0.0.1:${redis.port}`;
    const refused = await redisNode(name(), { url: url("noscript") }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(RedisStartError);
    const line = (refused as Error).message;
    expect(line).not.toContain("\n");
    expect(line).toMatch(/may not run EVAL.*\(\+@scripting\)/);
    expect(line).not.toContain(":pw@");
    const allowed = await redisNode(name(), { url: url("pwdless") });
    allowed.store.table("things").set("with-acl", 1);
    await allowed.durable();
    expect(await allowed.atomics.claimOnce("link", "acl", 60_000)).toBe(true);
    expect((await allowed.atomics.reserve("sends", "acl", 1, 60_000)).ok).toBe(true);
  });
});
