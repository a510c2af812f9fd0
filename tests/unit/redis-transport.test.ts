/**
 * The Redis transport alone, against a real redis-server: concurrent writers converge by the same
 * rules as gossip (in Redis too), claims keep the first writer, atomics give one answer
 * cluster-wide, and durable() rejects instead of hanging while Redis is away.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createClient } from "redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compareStamps, startCluster, type Cluster } from "../../cluster";
import { ClusterUnavailableError } from "../../cluster/errors";
import { startRedisServer, stopRedisServers, type TestRedisServer } from "../support/redis";
import { memoryLogger, waitFor } from "./cluster-support";

let redis: TestRedisServer;
const dirs: string[] = [];
const nodes: Cluster[] = [];

async function redisNode(clusterName: string, timeoutMs = 1000): Promise<Cluster> {
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
      redis: { url: redis.url, timeoutMs },
    },
    memoryLogger(),
    // a short heartbeat: a node finding a new, empty Redis waits 1.5 heartbeats for members holding rows
    { tables: { claims: { merge: "first-writer-wins" } }, redisTimings: { heartbeatMs: 400 } },
  );
  nodes.push(node);
  return node;
}

beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  await stopRedisServers();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe("Redis transport", () => {
  it("concurrent writes to one key converge on every node and in Redis (greater stamp wins)", async () => {
    const name = `u-${randomBytes(3).toString("hex")}`;
    const [a, b, c] = await Promise.all([redisNode(name), redisNode(name), redisNode(name)]);
    for (let i = 0; i < 20; i++) {
      a.store.table<number>("things").set("k", i);
      b.store.table<number>("things").set("k", 100 + i);
    }
    await Promise.all([a.durable(), b.durable()]);
    const winner = () => [a, b, c].map((n) => n.store.stampOf("things", "k"));
    await waitFor(() => new Set(winner().map((s) => JSON.stringify(s))).size === 1, "one winner everywhere");
    // a node started now reads the same winner from Redis
    const d = await redisNode(name);
    expect(d.store.stampOf("things", "k")).toEqual(a.store.stampOf("things", "k"));
    expect(d.store.table("things").get("k")).toBe(a.store.table("things").get("k"));
  });

  it("concurrent claims keep the first writer everywhere: the later writer adopts Redis's value", async () => {
    const name = `u-${randomBytes(3).toString("hex")}`;
    const [a, b] = await Promise.all([redisNode(name), redisNode(name)]);
    // in one turn of the event loop: neither node has seen the other's claim
    expect(a.store.table<string>("claims").set("alice@example.com", "uid-a")).toBe(true);
    expect(b.store.table<string>("claims").set("alice@example.com", "uid-b")).toBe(true);
    const stampA = a.store.stampOf("claims", "alice@example.com")!;
    const stampB = b.store.stampOf("claims", "alice@example.com")!;
    const first = compareStamps(stampA, stampB) < 0 ? "uid-a" : "uid-b";
    await Promise.all([a.durable(), b.durable()]);
    for (const node of [a, b]) {
      await waitFor(() => node.store.table<string>("claims").get("alice@example.com") === first, "the first claim");
    }
    expect((await redisNode(name)).store.table<string>("claims").get("alice@example.com")).toBe(first);
  });

  it("deletes travel as tombstones", async () => {
    const name = `u-${randomBytes(3).toString("hex")}`;
    const [a, b] = await Promise.all([redisNode(name), redisNode(name)]);
    a.store.table("things").set("gone", 1);
    await a.durable();
    await waitFor(() => b.store.table("things").has("gone"), "B sees the row");
    b.store.table("things").delete("gone");
    await b.durable();
    await waitFor(() => !a.store.table("things").has("gone"), "A sees the delete");
    expect((await redisNode(name)).store.table("things").has("gone")).toBe(false);
  });

  it("claimOnce and reserve give one answer whichever node asks", async () => {
    const name = `u-${randomBytes(3).toString("hex")}`;
    const [a, b] = await Promise.all([redisNode(name), redisNode(name)]);
    expect(a.atomics.scope).toBe("cluster");
    const claims = await Promise.all(
      Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).atomics.claimOnce("link", "one", 60_000)),
    );
    expect(claims.filter(Boolean)).toHaveLength(1);
    const slots = await Promise.all(
      Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).atomics.reserve("sends", "addr", 3, 60_000)),
    );
    const taken = slots.filter((s) => s.ok);
    expect(taken).toHaveLength(3);
    const refused = slots.find((s) => !s.ok);
    expect(refused && !refused.ok && refused.retryAfterMs).toBeGreaterThan(0);
    // a slot given back can be taken again
    const first = taken[0]!;
    if (first.ok) await b.atomics.release("sends", "addr", first.id);
    expect((await a.atomics.reserve("sends", "addr", 3, 60_000)).ok).toBe(true);
  });

  it("durable() rejects with ClusterUnavailableError while Redis is away, and the write lands after it returns", async () => {
    const name = `u-${randomBytes(3).toString("hex")}`;
    const a = await redisNode(name);
    await redis.stop("SIGKILL");
    try {
      await waitFor(() => !a.isReady(), "A notices the outage");
      a.store.table("things").set("while-away", 1);
      await expect(a.durable()).rejects.toBeInstanceOf(ClusterUnavailableError);
      await expect(a.atomics.claimOnce("link", "x", 1000)).rejects.toBeInstanceOf(ClusterUnavailableError);
    } finally {
      await redis.start();
    }
    await waitFor(() => a.isReady(), "A reconnects", 20_000);
    await waitFor(async () => {
      try {
        await a.durable();
        return true;
      } catch {
        return false;
      }
    }, "the write acknowledged after the outage");
    const late = await redisNode(name);
    expect(late.store.table("things").get("while-away")).toBe(1);
  });

  it("a stalled Redis: durable() and atomics reject after the timeout, never hang, and work again after it resumes", async () => {
    const name = `u-${randomBytes(3).toString("hex")}`;
    const a = await redisNode(name, 300);
    redis.pause();
    try {
      a.store.table("things").set("while-stalled", 1);
      const started = Date.now();
      await expect(a.durable()).rejects.toBeInstanceOf(ClusterUnavailableError);
      await expect(a.atomics.reserve("sends", "stalled", 3, 60_000)).rejects.toBeInstanceOf(ClusterUnavailableError);
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      redis.resume();
    }
    // the answers that arrive late are not mistaken for those of later commands
    await waitFor(
      async () => {
        try {
          a.store.table("things").set("after-stall", 2);
          await a.durable();
          return true;
        } catch {
          return false;
        }
      },
      "writes acknowledged again",
      20_000,
    );
    // atomics are decided again once the node is ready: Redis answered and the tables were read again
    await waitFor(() => a.isReady(), "A ready again", 20_000);
    expect(await a.atomics.claimOnce("link", `after-${name}`, 60_000)).toBe(true);
    expect(await a.atomics.claimOnce("link", `after-${name}`, 60_000)).toBe(false);
    const late = await redisNode(name);
    expect(late.store.table("things").get("after-stall")).toBe(2);
  });

  it("a node whose pub/sub connection dropped re-reads what it missed when it reconnects", async () => {
    const name = `u-${randomBytes(3).toString("hex")}`;
    const [a, b] = await Promise.all([redisNode(name), redisNode(name)]);
    const loadsBefore = a.status().counters.catchUps;
    const admin = createClient({ url: redis.url });
    await admin.connect();
    try {
      // drop every subscriber connection, then write at once: A is not subscribed when it is published
      await admin.sendCommand(["CLIENT", "KILL", "TYPE", "pubsub"]);
      b.store.table("things").set("missed", "yes");
      await b.durable();
    } finally {
      await admin.close();
    }
    // the reload after the reconnect may finish after the row arrived (when A resubscribed before
    // B published): wait for both, the row and the re-read
    await waitFor(
      () => a.store.table("things").get("missed") === "yes" && a.status().counters.catchUps > loadsBefore,
      "A re-reads the tables after reconnecting, and holds the missed row",
      20_000,
    );
    expect(a.status().redis?.reconnects).toBeGreaterThan(0);
  });
});
