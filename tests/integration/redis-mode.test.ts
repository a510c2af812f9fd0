/**
 * Redis mode with a real redis-server: server processes that meet only in Redis sign people in and
 * out across nodes, decide a link's single use and the per-address limit in Redis, survive a full
 * restart, and give clear 503s while Redis is away. The guarantees between nodes run twice: on one
 * Redis server, and on a three-primary Redis Cluster (keys and scripts spread over its slots).
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CookieJar } from "../support/cookie-jar";
import { accessToken, browse, form, pathOf, requestLink, requestMail, signIn } from "../support/flows";
import { ROOT, startNode, stopAllNodes, type NodeProcess } from "../support/node";
import {
  redisClusterEnv,
  startRedisClusterOf3,
  startRedisServer,
  stopRedisServers,
  waitForRedisCluster,
  type RedisStatusJson,
} from "../support/redis";
import { status } from "../support/cluster";
import { waitFor } from "../support/wait";

const execFileAsync = promisify(execFile);

async function me(node: NodeProcess, token: string): Promise<Response> {
  return node.fetch("/api/me", { headers: { Authorization: `Bearer ${token}` } });
}

async function clusterStatus(node: NodeProcess): Promise<RedisStatusJson> {
  return (await (await node.fetch("/cluster.json")).json()) as RedisStatusJson;
}

async function outbox(node: NodeProcess, email: string): Promise<string[]> {
  const { messages } = (await (await node.fetch("/dev/mailbox.json")).json()) as {
    messages: { to: string; text: string }[];
  };
  return messages.filter((m) => m.to === email).map((m) => m.text);
}

afterAll(async () => {
  await stopAllNodes();
  await stopRedisServers();
});

const topologies = [
  {
    name: "one Redis server",
    kind: "standalone",
    primaries: 1,
    start: async () => redisClusterEnv(await startRedisServer({ password: "test-password" })),
  },
  {
    name: "a three-primary Redis Cluster",
    kind: "cluster",
    primaries: 3,
    start: async () => redisClusterEnv((await startRedisClusterOf3()).env()),
  },
];

describe.each(topologies)("three nodes meeting in $name", ({ kind, primaries, start }) => {
  let env: Record<string, string>;
  let a: NodeProcess, b: NodeProcess, c: NodeProcess;

  beforeAll(async () => {
    env = await start();
    // one at a time: three cold starts at once on two busy cores can outlast the start deadline
    a = await startNode({ env });
    b = await startNode({ env });
    c = await startNode({ env });
    await waitForRedisCluster([a, b, c]);
  });

  it("show Redis mode, its latency and connection on /cluster.json, /cluster and npm run cluster -- status", async () => {
    const s = await clusterStatus(a);
    expect(s.mode).toBe("redis");
    expect(s.redis?.connection).toBe("connected");
    expect(typeof s.redis?.latencyMs).toBe("number");
    expect(s.redis?.keyPrefix).toBe(`pwdless-gs:${env.CLUSTER_NAME}:`);
    expect(s.redis?.topology.kind).toBe(kind);
    expect(s.redis?.topology.primaries).toHaveLength(primaries);
    expect(JSON.stringify(s)).not.toContain("test-password");
    const ready = await a.fetch("/readyz");
    expect(ready.status).toBe(200);
    // the topology without addresses: /readyz is open to anyone who can reach the node
    expect(await ready.json()).toMatchObject({ ready: true, redis: { topology: kind, primaries, waitReplicas: 0 } });
    const page = (await (await a.fetch("/cluster")).text()).replace(/<!-- -->/g, "");
    expect(page).toContain("Redis");
    expect(page).toContain(`${kind}:`);
    const { stdout } = await execFileAsync(
      process.execPath,
      ["--import", "tsx", "server/cluster-cli.ts", "status", "--url", b.url],
      { cwd: ROOT },
    );
    expect(stdout).toMatch(/mode\s+redis/);
    expect(stdout).toMatch(/redis\s+connected, latency [\d.]+ ms/);
    expect(stdout).toContain((await clusterStatus(c)).nodeId);
  });

  it("sign in on A, the session works on B and C; signed out on C, refused on A and B", async () => {
    const jar = await signIn(a, "redis-shared@example.com");
    const token = await accessToken(a, jar);
    const id = ((await (await me(a, token)).json()) as { id: string }).id;
    for (const node of [b, c]) {
      const res = await waitFor(`the session on ${node.port}`, async () => {
        const r = await me(node, token);
        return r.status === 200 ? r : undefined;
      });
      expect(((await res.json()) as { id: string }).id).toBe(id);
    }
    expect((await browse(b, jar.clone(), "/auth/refresh", { method: "POST" })).status).toBe(200);
    expect((await browse(c, jar.clone(), "/logout", { method: "POST" })).status).toBe(302);
    await waitFor("the sign-out to reach A", async () => (await me(a, token)).status === 401);
    expect((await me(b, token)).status).toBe(401);
    expect((await browse(a, jar.clone(), "/auth/refresh", { method: "POST" })).status).toBe(401);
  });

  it("two nodes: the same address signs in on A and B and reaches one user", async () => {
    const onA = await signIn(a, "two-nodes@example.com");
    const onB = await signIn(b, "two-nodes@example.com");
    const idA = ((await (await me(b, await accessToken(b, onA))).json()) as { id: string }).id;
    const idB = ((await (await me(a, await accessToken(a, onB))).json()) as { id: string }).id;
    expect(idA).toBe(idB);
  });

  it("12 concurrent link requests for one address, spread over the nodes, send at most the limit (3)", async () => {
    const email = "burst@example.com";
    const nodes = [a, b, c];
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) => nodes[i % 3]!.fetch("/login", form({ email }))),
    );
    const statuses = answers.map((r) => r.status);
    expect(statuses.filter((s) => s === 302)).toHaveLength(3);
    expect(statuses.filter((s) => s === 429)).toHaveLength(9);
    // every node's outbox shows the cluster's mail: exactly 3 went out
    await waitFor("the 3 mails everywhere", async () => (await outbox(c, email)).length === 3);
    expect(await outbox(a, email)).toHaveLength(3);
  });

  it("a late joiner loads every table from Redis and serves existing sessions", async () => {
    const jar = await signIn(b, "before-d@example.com");
    const token = await accessToken(b, jar);
    const d = await startNode({ env });
    await waitForRedisCluster([a, b, c, d]);
    expect((await me(d, token)).status).toBe(200);
    expect((await browse(d, jar.clone(), "/auth/refresh", { method: "POST" })).status).toBe(200);
    await d.stop();
  });

  it("the emailed code: five wrong tries spread over the nodes burn it and its link, decided in Redis", async () => {
    const jar = new CookieJar();
    const nodes = [a, b, c];
    const pendingOn = async () => Promise.all(nodes.map(async (n) => (await status(n)).tables.codePending ?? 0));
    const before = await pendingOn();
    const { link, code } = await requestMail(b, jar, "code-burn@example.com");
    // a node counts a try only once the code's pending row has reached it (before, no code is
    // there to be right either): a person reads the mail first, a loaded test machine must wait
    await waitFor("the pending code on every node", async () =>
      (await pendingOn()).every((size, i) => size > before[i]!),
    );
    const wrong = code === "000000" ? "111111" : "000000";
    for (let i = 0; i < 5; i += 1) {
      expect((await browse(nodes[i % 3]!, jar.clone(), "/login/sent", form({ code: wrong }))).status).toBe(400);
    }
    // burnt: the right code and the link are both refused now, on every node
    expect((await browse(c, jar.clone(), "/login/sent", form({ code }))).status).toBe(400);
    expect((await browse(a, jar.clone(), pathOf(link), { method: "POST" })).status).toBe(410);
  });

  it("a link issued by A works on B after A is stopped, once; C then refuses it as used", async () => {
    const jar = new CookieJar();
    const link = await requestLink(a, jar, "issuer-gone@example.com");
    expect(await a.stop()).toBe(0);
    const opened = await browse(b, jar.clone(), pathOf(link), { method: "POST" });
    expect(opened.status).toBe(302);
    expect(opened.headers.get("location")).toBe("/account");
    const again = await browse(c, jar.clone(), pathOf(link), { method: "POST" });
    expect(again.status).toBe(410);
    expect(await again.text()).toContain("already used");
  });

  it("a code sent by B is typed on C while B is down: it signs in once, and its link is then dead", async () => {
    const jar = new CookieJar();
    const { link, code } = await requestMail(b, jar, "code-issuer-gone@example.com");
    expect(await b.stop()).toBe(0);
    const typed = await browse(c, jar, "/login/sent", form({ code }));
    expect(typed.status).toBe(302);
    expect(jar.get("pwdless_session")).toBeDefined();
    expect((await browse(c, jar, "/account")).status).toBe(200);
    expect((await browse(c, new CookieJar(), pathOf(link), { method: "POST" })).status).toBe(410);
  });
});

describe("a full restart: every node and Redis itself (AOF)", () => {
  it("keeps every session", async () => {
    const redis = await startRedisServer();
    const env = redisClusterEnv(redis);
    const first = [await startNode({ env }), await startNode({ env })];
    await waitForRedisCluster(first);
    const jars = [await signIn(first[0]!, "restart-1@example.com"), await signIn(first[1]!, "restart-2@example.com")];
    const tokens = [await accessToken(first[0]!, jars[0]!), await accessToken(first[1]!, jars[1]!)];
    for (const node of first) expect(await node.stop()).toBe(0);
    await redis.stop();
    await redis.start();
    // new processes with the same data folders (node ids) and ports
    const again: NodeProcess[] = [];
    for (const n of first) again.push(await startNode({ env, port: n.port, dataDir: n.dataDir }));
    await waitForRedisCluster(again);
    for (const node of again) {
      for (const [i, jar] of jars.entries()) {
        expect((await me(node, tokens[i]!)).status).toBe(200);
        expect((await browse(node, jar.clone(), "/account")).status).toBe(200);
      }
    }
  });
});

describe("Redis stopped mid-run", () => {
  it("gives clear 503s and log lines, keeps reads working, and recovers by itself when Redis returns", async () => {
    const redis = await startRedisServer();
    const env = redisClusterEnv(redis);
    const a = await startNode({ env });
    const b = await startNode({ env });
    await waitForRedisCluster([a, b]);
    const jar = await signIn(a, "outage@example.com");
    const token = await accessToken(a, jar);

    await redis.stop("SIGKILL");
    await waitFor("A not ready", async () => (await a.fetch("/readyz")).status === 503);
    // reads from memory
    const account = await browse(a, jar.clone(), "/account");
    expect(account.status).toBe(200);
    expect(await (await me(b, token)).json()).toMatchObject({ email: "outage@example.com" });
    // writes refused clearly: JSON for API clients, a page for people
    const api = await b.fetch("/api/auth/email", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: "during-outage@example.com" }),
    });
    expect(api.status).toBe(503);
    // the documented code: an outage, to retry, not a server error
    expect(await api.json()).toMatchObject({ error: "unavailable", message: expect.any(String) });
    const out = await browse(a, jar.clone(), "/logout", { method: "POST" });
    expect(out.status).toBe(503);
    expect(out.headers.get("content-type")).toContain("text/html");
    expect(await out.text()).toContain("cannot store changes");
    expect(a.log).toMatch(/Redis is unreachable/);
    expect(a.log).not.toMatch(/unexpected error/);
    expect(a.exitCode).toBeUndefined();
    expect(b.exitCode).toBeUndefined();

    await redis.start();
    await waitForRedisCluster([a, b], 30_000);
    expect((await a.fetch("/readyz")).status).toBe(200);
    // writes work again, on both nodes, and fan out
    const after = await signIn(b, "after-outage@example.com");
    const afterToken = await accessToken(b, after);
    await waitFor("the new session on A", async () => (await me(a, afterToken)).status === 200);
    expect((await browse(a, jar.clone(), "/logout", { method: "POST" })).status).toBe(302);
  });
});

describe("REDIS_URL problems at start", () => {
  const fails = async (env: Record<string, string>) => {
    const node = await startNode({ env, waitUntil: "none" });
    expect(await node.waitForExit()).toBe(1);
    expect(node.log).not.toMatch(/\n\s+at /); // no stack
    return node.log;
  };

  it("refuses a malformed URL, one line per problem", async () => {
    const log = await fails({ REDIS_URL: "http://127.0.0.1:6379/x", REDIS_TIMEOUT_MS: "nope" });
    expect(log).toContain("config: REDIS_URL must start with redis:// or rediss://");
    expect(log).toContain("config: REDIS_URL's path is the database number");
    expect(log).toContain("config: REDIS_TIMEOUT_MS must be a whole number");
  });

  it("a wrong password: one clear line and exit 1", async () => {
    const redis = await startRedisServer({ password: "right-password" });
    const log = await fails({ REDIS_URL: `redis://:wrong@127.0.0.1:${redis.port}` });
    expect(log).toMatch(/cluster: Redis at 127\.0\.0\.1:\d+ refused the password in REDIS_URL/);
    expect(log.match(/Redis/g)).toHaveLength(2); // that line and the README pointer, no retry noise
    expect(log).not.toContain(":wrong@");
  });

  it("an unknown host: one clear line and exit 1", async () => {
    const log = await fails({ REDIS_URL: "redis://no-such-host.invalid:6379" });
    expect(log).toContain("cluster: unknown Redis host in REDIS_URL: no-such-host.invalid:6379 does not resolve");
  });
});
