/**
 * Redis mode on a bad day, with real server processes and real redis-servers: the primary
 * SIGKILLed under a sign-in load behind Sentinel (nothing acknowledged is lost, sign-ins resume
 * by themselves), Redis restarted empty under three nodes (everything is back before they say
 * ready), a second stall right after a first (/readyz 503 both times), and a Redis user without
 * +@scripting (one line at start).
 */
import { afterAll, describe, expect, it } from "vitest";
import { CookieJar } from "../support/cookie-jar";
import { accessToken, browse, form, pathOf, requestLink, signIn } from "../support/flows";
import { startNode, stopAllNodes, type NodeProcess } from "../support/node";
import {
  redisCli,
  redisClusterEnv,
  startRedisSentinelSet,
  startRedisServer,
  stopRedisServers,
  waitForRedisCluster,
  type RedisStatusJson,
} from "../support/redis";
import { waitFor } from "../support/wait";

// several processes start, fail over and catch up in each of these: on two busy cores they take a while
afterAll(async () => {
  await stopAllNodes();
  await stopRedisServers();
});

async function status(node: NodeProcess): Promise<RedisStatusJson> {
  return (await (await node.fetch("/cluster.json")).json()) as RedisStatusJson;
}

async function userId(node: NodeProcess, jar: CookieJar): Promise<string> {
  const token = await accessToken(node, jar.clone());
  const me = await node.fetch("/api/me", { headers: { Authorization: `Bearer ${token}` } });
  expect(me.status).toBe(200);
  return ((await me.json()) as { id: string }).id;
}

describe("Sentinel: the primary is SIGKILLed under a sign-in load", () => {
  it("loses no acknowledged sign-in, and sign-ins succeed again by themselves after the failover", async () => {
    const set = await startRedisSentinelSet();
    // the load comes from one address: lift the per-IP limits, which are not under test here
    const env = {
      ...redisClusterEnv(set.env()),
      RATE_LIMIT_REQUESTS_PER_IP: "10000",
      RATE_LIMIT_OPENINGS_PER_IP: "10000",
    };
    const a = await startNode({ env });
    const b = await startNode({ env });
    await waitForRedisCluster([a, b]);
    // the primary has a replica: every write waits for it
    await waitFor("writes to wait for the replica", async () => (await status(a)).redis?.waitReplicas.effective === 1);
    const ready = (await (await a.fetch("/readyz")).json()) as { redis: Record<string, unknown> };
    expect(ready.redis).toMatchObject({ topology: "sentinel", primaries: 1, replicasOnline: 1, waitReplicas: 1 });
    expect((await status(b)).redis?.topology.primaries[0]?.address).toBe(`127.0.0.1:${set.primary.port}`);
    expect(await (await a.fetch("/metrics")).text()).toMatch(/^pwdless_cluster_redis_wait_replicas 1$/m);

    const acknowledged: Array<{ email: string; jar: CookieJar; at: number }> = [];
    const refused: string[] = [];
    let killedAt = 0;
    let stop = false;
    let n = 0;
    // four sign-ins at a time, spread over both nodes, until told to stop
    const worker = async (w: number) => {
      while (!stop) {
        const node = (n += 1) % 2 ? a : b;
        const email = `failover-${w}-${n}@example.com`;
        try {
          const jar = await signIn(node, email);
          acknowledged.push({ email, jar, at: Date.now() });
        } catch (error) {
          refused.push((error as Error).message.slice(0, 80));
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    };
    const workers = [0, 1, 2, 3].map(worker);
    await waitFor("8 sign-ins before the kill", () => acknowledged.length >= 8, 60_000);
    killedAt = Date.now();
    await set.primary.stop("SIGKILL");
    const firstAfter = await waitFor(
      "a sign-in acknowledged after the failover",
      () => acknowledged.find((s) => s.at > killedAt + 500),
      60_000,
      100,
    );
    await waitFor(
      "8 more sign-ins after the failover",
      () => acknowledged.filter((s) => s.at > killedAt).length >= 8,
      60_000,
    );
    stop = true;
    await Promise.all(workers);
    console.log(
      `failover: ${acknowledged.length} sign-ins acknowledged, ${refused.length} refused meanwhile; sign-ins resumed ${firstAfter.at - killedAt} ms after the SIGKILL`,
    );

    // the replica is the primary now, and it holds every acknowledged sign-in: a node started now
    // reads everything from it, and each session works there
    await waitFor("the nodes to find the new primary", async () => {
      const s = await status(a);
      return s.redis?.topology.primaries[0]?.address === `127.0.0.1:${set.replica.port}`;
    });
    const c = await startNode({ env });
    await waitForRedisCluster([a, b, c], 30_000);
    for (const { email, jar } of acknowledged) {
      const account = await browse(c, jar.clone(), "/account");
      expect(account.status, `${email} signed in before being lost`).toBe(200);
    }
    // and the nodes say so on their own: every answer since came from the new primary
    expect((await a.fetch("/readyz")).status).toBe(200);
  }, 180_000);
});

describe("Redis restarted empty under three nodes", () => {
  it("gets every user, claim, session and used link back before the nodes say ready; no second id; a used link stays used", async () => {
    const redis = await startRedisServer();
    const env = redisClusterEnv(redis);
    const nodes = [await startNode({ env }), await startNode({ env }), await startNode({ env })];
    const [a, b, c] = nodes as [NodeProcess, NodeProcess, NodeProcess];
    await waitForRedisCluster(nodes);
    const people = await Promise.all(
      [0, 1, 2, 3, 4, 5].map(async (i) => {
        const email = `restart-empty-${i}@example.com`;
        const jar = await signIn(nodes[i % 3]!, email);
        return { email, jar, id: await userId(nodes[i % 3]!, jar) };
      }),
    );
    // a link used once: its use is a row and a claim, both in Redis
    const usedJar = new CookieJar();
    const used = await requestLink(b, usedJar, "used-link@example.com");
    expect((await browse(c, usedJar.clone(), pathOf(used), { method: "POST" })).status).toBe(302);
    const prefix = `pwdless-gs:${env.CLUSTER_NAME}:`;
    const rowKeys = async () =>
      new Set((await redisCli(redis.port, ["--scan", "--pattern", `${prefix}{*}:row:*`])).split("\n").filter(Boolean));
    // every node has applied every row before the wipe (they are what puts Redis back)
    await waitFor("every row on every node", async () => {
      const sizes = await Promise.all(
        nodes.map(async (n) => JSON.stringify(((await status(n)) as { tables?: unknown }).tables)),
      );
      return new Set(sizes).size === 1;
    });
    const before = await rowKeys();
    for (const table of ["users", "emails", "sessions", "linkUses", "onceClaims"]) {
      expect(
        [...before].some((key) => key.includes(`:row:${table}:`)),
        `a ${table} row in Redis`,
      ).toBe(true);
    }

    await redis.restartEmpty();
    expect((await rowKeys()).size).toBe(0);
    await waitFor("the nodes to notice", async () => {
      const all = await Promise.all(nodes.map(status));
      return all.every((s) => !s.ready) || all.some((s) => (s.redis?.reseeds.count ?? 0) > 0);
    });
    let seenReady = 0;
    await waitFor(
      "every node ready again",
      async () => {
        const readiness = await Promise.all(nodes.map(async (n) => (await n.fetch("/readyz")).status === 200));
        if (readiness.some(Boolean)) {
          seenReady += 1;
          const now = await rowKeys();
          const missing = [...before].filter((key) => !now.has(key));
          expect(missing, "rows missing from Redis while a node says ready").toEqual([]);
        }
        return readiness.every(Boolean);
      },
      30_000,
      25,
    );
    expect(seenReady).toBeGreaterThan(0);

    // a node started after the wipe sees the same users: one id per address, sessions that work
    const d = await startNode({ env });
    await waitForRedisCluster([a, b, c, d]);
    for (const person of people) {
      expect((await browse(d, person.jar.clone(), "/account")).status).toBe(200);
      const again = await signIn(d, person.email);
      expect(await userId(d, again)).toBe(person.id);
    }
    // the used link stays used, on the new node and on the old ones
    for (const node of [d, a]) {
      const reopened = await browse(node, usedJar.clone(), pathOf(used), { method: "POST" });
      expect(reopened.status).toBe(410);
    }
    expect(a.log).toMatch(/Redis lost rows; putting this node's rows back before serving/);
  }, 180_000);
});

describe("a Redis that stalls", () => {
  it("a second stall right after a first: /readyz 503 both times, writes answer unavailable, then recover", async () => {
    const redis = await startRedisServer();
    const env = redisClusterEnv(redis);
    const a = await startNode({ env });
    await waitForRedisCluster([a]);
    for (let round = 1; round <= 2; round += 1) {
      redis.pause();
      try {
        await waitFor(
          `/readyz 503 during stall ${round}`,
          async () => (await a.fetch("/readyz")).status === 503,
          20_000,
        );
        const api = await a.fetch("/api/auth/email", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ email: `stall-${round}@example.com` }),
        });
        expect(api.status).toBe(503);
        expect(await api.json()).toMatchObject({ error: "unavailable" });
      } finally {
        redis.resume();
      }
      await waitFor(`/readyz 200 after stall ${round}`, async () => (await a.fetch("/readyz")).status === 200, 30_000);
    }
    expect((await browse(a, new CookieJar(), "/login", form({ email: "after-stalls@example.com" }))).status).toBe(302);
    expect(a.exitCode).toBeUndefined();
  }, 180_000);
});

describe("Redis permissions at start", () => {
  it("a Redis user without +@scripting: one line naming what is missing, exit 1", async () => {
    const redis = await startRedisServer();
    await redisCli(redis.port, ["ACL", "SETUSER", "noscript", "on", ">pw", "~*", "&*", "+@all", "-@scripting"]);
    const node = await startNode({
      env: { ...redisClusterEnv(redis), REDIS_URL: `redis://noscript:pw@127.0.0.1:${redis.port}` },
      waitUntil: "none",
    });
    expect(await node.waitForExit()).toBe(1);
    const lines = node.output.filter((line) => line.startsWith("cluster:"));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^cluster: the Redis user at redis:\/\/noscript:\*\*\*@127\.0\.0\.1:\d+\/? may not run EVAL/,
    );
    expect(lines[0]).toContain("+@scripting");
    expect(node.log).not.toMatch(/\n\s+at /);
    expect(node.log).not.toContain(":pw@");
  });
});
