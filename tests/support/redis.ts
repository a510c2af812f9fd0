/**
 * Real redis-server processes for tests, each on its own free loopback port and temp folder,
 * stopped after: one server with AOF, a primary with a replica and three sentinels, or a
 * three-primary Redis Cluster.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { createConnection } from "node:net";
import { tempDir, testSecret, uniqueName, type NodeProcess } from "./node";
import { freePort } from "./ports";
import { waitFor } from "./wait";

export const REDIS_SERVER = process.env.REDIS_SERVER_PATH ?? "/usr/bin/redis-server";

export interface RedisServerOptions {
  /** requirepass: clients must send this password */
  password?: string;
  /** reuse a folder (its AOF) from an earlier server, to test a Redis restart */
  dir?: string;
  port?: number;
  /** more redis-server arguments (`--replicaof`, `--cluster-enabled yes`, …) */
  args?: string[];
  /** run as a sentinel: this file's text is its configuration (written into `dir`) */
  sentinelConfig?: string;
}

export class TestRedisServer {
  private proc: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  readonly output: string[] = [];

  constructor(
    readonly port: number,
    readonly dir: string,
    readonly password: string | undefined,
    private readonly extraArgs: string[] = [],
    private readonly sentinelConfig?: string,
  ) {}

  /** The URL a node is given as REDIS_URL. */
  get url(): string {
    return `redis://${this.password ? `:${encodeURIComponent(this.password)}@` : ""}127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.proc !== undefined;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  async start(): Promise<void> {
    if (this.proc) return;
    if (this.sentinelConfig !== undefined) {
      mkdirSync(this.dir, { recursive: true });
      const file = path.join(this.dir, "sentinel.conf");
      writeFileSync(file, `port ${this.port}\nbind 127.0.0.1\ndir ${this.dir}\n${this.sentinelConfig}`);
      return this.spawn([file, "--sentinel"]);
    }
    const args = [
      "--port",
      String(this.port),
      "--bind",
      "127.0.0.1",
      "--dir",
      this.dir,
      "--appendonly",
      "yes",
      "--appendfsync",
      "always",
      "--save",
      "",
      "--protected-mode",
      "no",
    ];
    if (this.password) args.push("--requirepass", this.password);
    return this.spawn([...args, ...this.extraArgs]);
  }

  private async spawn(args: string[]): Promise<void> {
    const proc = spawn(REDIS_SERVER, args, { stdio: ["ignore", "pipe", "pipe"] });
    this.proc = proc;
    const collect = (chunk: Buffer) => this.output.push(...chunk.toString("utf8").split("\n").filter(Boolean));
    proc.stdout?.on("data", collect);
    proc.stderr?.on("data", collect);
    this.exited = new Promise((resolve) =>
      proc.on("exit", () => {
        if (this.proc === proc) this.proc = undefined;
        resolve();
      }),
    );
    await waitFor(
      `redis-server on port ${this.port} to accept connections`,
      async () => {
        if (!this.proc) throw new Error(`redis-server exited:\n${this.output.join("\n")}`);
        return canConnect(this.port);
      },
      15_000,
      50,
    );
  }

  /** SIGTERM: Redis flushes its AOF and exits, as in an orderly restart. */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    if (!this.proc) return;
    this.proc.kill(signal);
    await this.exited;
  }

  /** SIGSTOP: the server keeps its connections but answers nothing, as a stalled Redis does. */
  pause(): void {
    this.proc?.kill("SIGSTOP");
  }

  resume(): void {
    this.proc?.kill("SIGCONT");
  }

  /** Kill it and delete its AOF and RDB: it comes back empty, as a fresh or flushed Redis does. */
  async restartEmpty(): Promise<void> {
    await this.stop("SIGKILL");
    for (const entry of readdirSync(this.dir)) rmSync(path.join(this.dir, entry), { recursive: true, force: true });
    await this.start();
  }

  async remove(): Promise<void> {
    this.resume();
    await this.stop("SIGKILL");
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

const servers: TestRedisServer[] = [];

/** Start a redis-server for this test file; stopRedisServers() removes it and its folder. */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<TestRedisServer> {
  const server = new TestRedisServer(
    options.port ?? (await freePort()),
    options.dir ?? tempDir("pwdless-redis"),
    options.password,
    options.args,
    options.sentinelConfig,
  );
  servers.push(server);
  await server.start();
  return server;
}

export async function stopRedisServers(): Promise<void> {
  for (const server of servers.splice(0)) await server.remove();
}

const execFileAsync = promisify(execFile);

/** A command to one test server, through redis-cli (no client library of our own in the way). */
export async function redisCli(port: number, args: string[], password?: string): Promise<string> {
  const auth = password ? ["-a", password, "--no-auth-warning"] : [];
  const { stdout } = await execFileAsync("redis-cli", ["-h", "127.0.0.1", "-p", String(port), ...auth, ...args]);
  return stdout.trim();
}

export interface TestSentinelSet {
  primary: TestRedisServer;
  replica: TestRedisServer;
  sentinels: TestRedisServer[];
  name: string;
  /** the settings a node needs to find the primary through the sentinels */
  env(): Record<string, string>;
}

/**
 * A primary (AOF) with one replica and three sentinels that fail over after 1 s without an
 * answer (quorum 2). Resolves once every sentinel knows the replica.
 */
export async function startRedisSentinelSet(): Promise<TestSentinelSet> {
  const primary = await startRedisServer();
  const replica = await startRedisServer({ args: ["--replicaof", "127.0.0.1", String(primary.port)] });
  const name = uniqueName("primary");
  const sentinels: TestRedisServer[] = [];
  for (let i = 0; i < 3; i += 1) {
    sentinels.push(
      await startRedisServer({
        sentinelConfig: [
          `sentinel monitor ${name} 127.0.0.1 ${primary.port} 2`,
          `sentinel down-after-milliseconds ${name} 1000`,
          `sentinel failover-timeout ${name} 4000`,
          `sentinel parallel-syncs ${name} 1`,
          "",
        ].join("\n"),
      }),
    );
  }
  await waitFor(
    "the replica in sync and known to every sentinel",
    async () => {
      const info = await redisCli(primary.port, ["INFO", "replication"]);
      if (!/slave0:.*state=online/.test(info)) return false;
      for (const sentinel of sentinels) {
        const replicas = await redisCli(sentinel.port, ["SENTINEL", "REPLICAS", name]);
        if (!replicas.includes(String(replica.port))) return false;
      }
      return true;
    },
    30_000,
    200,
  );
  return {
    primary,
    replica,
    sentinels,
    name,
    env: () => ({
      REDIS_SENTINELS: sentinels.map((s) => `127.0.0.1:${s.port}`).join(","),
      REDIS_SENTINEL_NAME: name,
    }),
  };
}

export interface TestRedisCluster {
  nodes: TestRedisServer[];
  env(): Record<string, string>;
}

/** A Redis Cluster of three primaries (no replicas), made with `redis-cli --cluster create`. */
export async function startRedisClusterOf3(): Promise<TestRedisCluster> {
  const nodes: TestRedisServer[] = [];
  for (let i = 0; i < 3; i += 1) {
    const dir = tempDir("pwdless-redis-cluster");
    nodes.push(
      await startRedisServer({
        dir,
        args: ["--cluster-enabled", "yes", "--cluster-config-file", path.join(dir, "nodes.conf")],
      }),
    );
  }
  await execFileAsync("redis-cli", [
    "--cluster",
    "create",
    ...nodes.map((n) => `127.0.0.1:${n.port}`),
    "--cluster-yes",
  ]);
  await waitFor(
    "the Redis Cluster to be ok on every node",
    async () => {
      for (const node of nodes) {
        if (!(await redisCli(node.port, ["CLUSTER", "INFO"])).includes("cluster_state:ok")) return false;
      }
      return true;
    },
    30_000,
    200,
  );
  return { nodes, env: () => ({ REDIS_CLUSTER_NODES: nodes.map((n) => `127.0.0.1:${n.port}`).join(",") }) };
}

/**
 * Settings every node of one Redis-mode test cluster shares: one server's REDIS_URL, or the
 * settings of a Sentinel set or a Redis Cluster (their `env()`).
 */
export function redisClusterEnv(redis: TestRedisServer | Record<string, string>): Record<string, string> {
  return {
    CLUSTER_NAME: uniqueName("tr"),
    SECRET_KEY_BASE: testSecret(),
    CLUSTER_DISCOVERY: "none",
    ...(redis instanceof TestRedisServer ? { REDIS_URL: redis.url } : redis),
    REDIS_TIMEOUT_MS: "1000",
  };
}

export interface RedisStatusJson {
  mode: string;
  nodeId: string;
  ready: boolean;
  peers: { id: string }[];
  redis?: {
    connection: string;
    latencyMs: number | null;
    keyPrefix: string;
    topology: { kind: string; primaries: { address: string; replicas: { address: string; state: string }[] }[] };
    waitReplicas: { setting: string | number; effective: number; shortfalls: number };
    reseeds: { running: boolean; count: number; lastAt: number | null; rows: number };
  };
}

/** Wait until every node is ready and sees every other one's heartbeat. */
export async function waitForRedisCluster(nodes: NodeProcess[], timeoutMs = 20_000): Promise<void> {
  await waitFor(
    `${nodes.length} Redis-mode nodes to see each other`,
    async () => {
      const all = await Promise.all(
        nodes.map(async (n) => (await (await n.fetch("/cluster.json")).json()) as RedisStatusJson),
      );
      const ids = all.map((s) => s.nodeId);
      return all.every(
        (s) => s.ready && ids.filter((id) => id !== s.nodeId).every((id) => s.peers.some((p) => p.id === id)),
      );
    },
    timeoutMs,
    100,
  );
}
