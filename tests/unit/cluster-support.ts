/**
 * Helpers for the cluster tests: nodes on 127.0.0.1 with temp data dirs, a unique cluster name
 * and a temp registry folder each, and polling with deadlines.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import {
  startCluster,
  type Cluster,
  type ClusterConfig,
  type ClusterTimings,
  type Logger,
  type StartClusterOptions,
} from "../../cluster";

export interface LogLine {
  level: "info" | "warn" | "error";
  msg: string;
  fields?: object;
}

export function memoryLogger(lines: LogLine[] = []): Logger & { lines: LogLine[] } {
  return {
    lines,
    info: (msg, fields) => void lines.push({ level: "info", msg, fields }),
    warn: (msg, fields) => void lines.push({ level: "warn", msg, fields }),
    error: (msg, fields) => void lines.push({ level: "error", msg, fields }),
  };
}

/** Short intervals so a test sees discovery and catch-up quickly. */
export const FAST: Partial<ClusterTimings> = {
  redialTickMs: 200,
  redialMinBackoffMs: 200,
  redialMaxBackoffMs: 2_000,
  registryScanMs: 250,
  registryHeartbeatMs: 1_000,
  announceIntervalMs: 1_000,
  syncIntervalMs: 2_000,
};

export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
  intervalMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** One test's world: its own cluster name, key and registry folder; stops everything it started. */
export class TestCluster {
  readonly clusterName = `t-${randomBytes(6).toString("hex")}`;
  readonly clusterKey = new Uint8Array(randomBytes(32));
  readonly nodes: Cluster[] = [];
  readonly logs: LogLine[] = [];
  private readonly dirs: string[] = [];
  private registryDir: string | undefined;

  async tempDir(prefix = "node-"): Promise<string> {
    const dir = await mkdtemp(path.join(os.tmpdir(), `pwdless-gs-test-${prefix}`));
    this.dirs.push(dir);
    return dir;
  }

  async registry(): Promise<string> {
    this.registryDir ??= await this.tempDir("registry-");
    return this.registryDir;
  }

  async config(overrides: Partial<ClusterConfig> = {}): Promise<ClusterConfig> {
    return {
      clusterName: this.clusterName,
      clusterKey: this.clusterKey,
      dataDir: overrides.dataDir ?? (await this.tempDir()),
      host: "127.0.0.1",
      port: 0,
      peers: [],
      discovery: "local",
      registryDir: await this.registry(),
      ...overrides,
    };
  }

  async start(
    overrides: Partial<ClusterConfig> = {},
    timings: Partial<ClusterTimings> | undefined = FAST,
    extra: { clock?: () => number; maxClockSkewMs?: number; acks?: StartClusterOptions["acks"] } = {},
  ): Promise<Cluster> {
    const node = await startCluster(await this.config(overrides), memoryLogger(this.logs), { timings, ...extra });
    this.nodes.push(node);
    return node;
  }

  async stop(node: Cluster): Promise<void> {
    await node.stop();
    this.nodes.splice(this.nodes.indexOf(node), 1);
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
    this.nodes.length = 0;
    await Promise.all(this.dirs.map((d) => rm(d, { recursive: true, force: true })));
  }
}

export function connectedIds(node: Cluster): string[] {
  return node
    .status()
    .peers.filter((p) => p.connected)
    .map((p) => p.id);
}

export function isMeshComplete(nodes: Cluster[]): boolean {
  return nodes.every((n) => {
    const ids = new Set(connectedIds(n));
    return nodes.every((m) => m === n || ids.has(m.nodeId));
  });
}
