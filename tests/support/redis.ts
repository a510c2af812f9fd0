/** A real redis-server for tests: its own free loopback port and temp folder, AOF on, stopped after. */
import { spawn, type ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
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
}

export class TestRedisServer {
  private proc: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  readonly output: string[] = [];

  constructor(
    readonly port: number,
    readonly dir: string,
    readonly password: string | undefined,
  ) {}

  /** The URL a node is given as REDIS_URL. */
  get url(): string {
    return `redis://${this.password ? `:${encodeURIComponent(this.password)}@` : ""}127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.proc !== undefined;
  }

  async start(): Promise<void> {
    if (this.proc) return;
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
  );
  servers.push(server);
  await server.start();
  return server;
}

export async function stopRedisServers(): Promise<void> {
  for (const server of servers.splice(0)) await server.remove();
}

/** Settings every node of one Redis-mode test cluster shares. */
export function redisClusterEnv(redis: TestRedisServer): Record<string, string> {
  return {
    CLUSTER_NAME: uniqueName("tr"),
    SECRET_KEY_BASE: testSecret(),
    CLUSTER_DISCOVERY: "none",
    REDIS_URL: redis.url,
    REDIS_TIMEOUT_MS: "1000",
  };
}

export interface RedisStatusJson {
  mode: string;
  nodeId: string;
  ready: boolean;
  peers: { id: string }[];
  redis?: { connection: string; latencyMs: number | null; keyPrefix: string };
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
