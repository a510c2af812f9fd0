/**
 * One small door to Redis for the Redis-mode node, whatever the deployment: a standalone server
 * (REDIS_URL), a primary found through Sentinel (createSentinel), or a Redis Cluster
 * (createCluster). Commands are routed by their first key, scripts run by SHA (loaded on first
 * use), SCAN walks every primary, pub/sub is sharded, and `WAIT` reaches every primary the
 * node wrote to. Nothing here waits without a deadline that its caller can race (`withDeadline`).
 */
import { createClient, createCluster, createSentinel } from "redis";
import type { RedisAddress, RedisSettings } from "../types";
import type { Script } from "./scripts";

type Client = ReturnType<typeof standaloneClient>;
type Sentinel = ReturnType<typeof createSentinel>;
type ClusterClient = ReturnType<typeof createCluster>;

export type RedisKind = "standalone" | "sentinel" | "cluster";

export interface RedisReplica {
  address: string;
  /** as the primary reports it: online, wait_bgsave, … */
  state: string;
  /** seconds since the replica's last acknowledgement */
  lagSeconds: number | null;
}

export interface RedisPrimary {
  address: string;
  replicas: RedisReplica[];
}

export interface RedisTopology {
  kind: RedisKind;
  /** Sentinel: the monitored primary's name */
  sentinelName?: string;
  primaries: RedisPrimary[];
}

export interface ConnectionEvents {
  /** a connection was lost or reported a problem: not healthy until Redis answers again */
  lost(error: unknown): void;
  /** a pub/sub connection came back: messages may have been missed meanwhile */
  resubscribed(): void;
}

export interface ConnectionOptions {
  timeoutMs: number;
  /** ms before the next reconnect attempt, or an Error to give up */
  reconnectStrategy(retries: number, cause: Error): number | Error;
}

type Listener = (message: string, channel: string) => void;

/** Where Redis is, as it may be logged (no password). */
export function describeTarget(settings: RedisSettings): string {
  if (settings.mode === "sentinel") {
    return `Sentinel "${settings.sentinelName}" at ${settings.sentinels.map(address).join(",")}`;
  }
  if (settings.mode === "cluster") return `Redis Cluster at ${settings.nodes.map(address).join(",")}`;
  try {
    const url = new URL(settings.url);
    if (url.password) url.password = "***";
    return url.toString();
  } catch {
    return "(unparsable REDIS_URL)";
  }
}

function address(node: RedisAddress): string {
  return `${node.host}:${node.port}`;
}

export class RedisConnection {
  readonly kind: RedisKind;
  private readonly standalone?: { client: Client; subscriber: Client };
  private readonly sentinel?: Sentinel;
  private readonly cluster?: ClusterClient;

  constructor(
    private readonly settings: RedisSettings,
    events: ConnectionEvents,
    options: ConnectionOptions,
  ) {
    const socket = {
      connectTimeout: options.timeoutMs,
      reconnectStrategy: options.reconnectStrategy,
      ...(settings.tls ? { tls: true as const } : {}),
    };
    // a command is timed out only until it is written; callers race an answer's deadline
    const commandOptions = { timeout: options.timeoutMs };
    const credentials = { username: settings.username, password: settings.password };
    if (settings.mode === "sentinel") {
      this.kind = "sentinel";
      this.sentinel = createSentinel({
        name: settings.sentinelName,
        sentinelRootNodes: settings.sentinels,
        // one connection to the primary: WAIT then covers every write this node sent
        masterPoolSize: 1,
        commandOptions,
        nodeClientOptions: {
          ...credentials,
          database: settings.database,
          disableOfflineQueue: true,
          socket,
        },
        sentinelClientOptions: {
          password: settings.sentinelPassword,
          socket: { connectTimeout: options.timeoutMs, ...(settings.tls ? { tls: true as const } : {}) },
        },
        // a failover is seen at once through the sentinels' own pub/sub, and polled as a fallback
        scanInterval: 2_000,
        maxCommandRediscovers: 4,
      });
      // the Sentinel's own errors (a sentinel unreachable, a scan that failed): the heartbeat judges health
      this.sentinel.on("error", () => undefined);
      // a sentinel or replica going away does not touch the data path; the primary's connection does
      this.sentinel.on("client-error", (event: { type?: string; error?: unknown }) => {
        if (event.type === "MASTER") events.lost(event.error ?? event);
      });
      this.sentinel.on("reconnecting", () => events.lost(new Error("the Sentinel is looking for the primary")));
      // the library resubscribes on the new primary after a failover; what was sent meanwhile is lost
      this.sentinel.on("topology-change", (event: { type: string }) => {
        if (event.type === "MASTER_CHANGE") events.resubscribed();
      });
    } else if (settings.mode === "cluster") {
      this.kind = "cluster";
      this.cluster = createCluster({
        // a root node's socket replaces the defaults' one: it carries TLS and timeouts too
        rootNodes: settings.nodes.map((node) => ({ socket: { ...socket, host: node.host, port: node.port } })),
        defaults: { ...credentials, disableOfflineQueue: true, socket },
        commandOptions,
      });
      this.cluster.on("error", (error: unknown) => events.lost(error));
      this.cluster.on("node-error", (error: unknown) => events.lost(error));
      // each node client has its own info object: a second "ready" for it is a reconnect
      const readyOnce = new WeakSet<object>();
      this.cluster.on("node-ready", (info: object) => {
        if (readyOnce.has(info)) events.resubscribed();
        else readyOnce.add(info);
      });
    } else {
      this.kind = "standalone";
      const client = standaloneClient(settings.url, options.timeoutMs, socket);
      const subscriber = client.duplicate();
      client.on("error", (error: unknown) => events.lost(error));
      subscriber.on("error", (error: unknown) => events.lost(error));
      let subscribedOnce = false;
      subscriber.on("ready", () => {
        if (subscribedOnce) events.resubscribed();
        subscribedOnce = true;
      });
      this.standalone = { client, subscriber };
    }
  }

  async connect(): Promise<void> {
    if (this.standalone) {
      await this.standalone.client.connect();
      await this.standalone.subscriber.connect();
    } else if (this.sentinel) await this.sentinel.connect();
    else if (this.cluster) await this.cluster.connect();
  }

  /** The library's own view: every connection it needs is open. */
  isReady(): boolean {
    if (this.standalone) return this.standalone.client.isReady && this.standalone.subscriber.isReady;
    if (this.sentinel) return this.sentinel.isReady;
    return this.cluster?.isReady ?? false;
  }

  /** A command routed by its key (the slot's primary on a Cluster; the primary otherwise). */
  send(key: string | undefined, args: string[]): Promise<unknown> {
    if (this.standalone) return this.standalone.client.sendCommand(args);
    if (this.sentinel) return this.sentinel.sendCommand(false, args);
    return this.cluster!.sendCommand(key, false, args);
  }

  /** Run a script by its SHA; on a Redis that has not seen it yet (or restarted), load it with the call. */
  async run(script: Script, keys: string[], args: string[]): Promise<unknown> {
    const tail = [String(keys.length), ...keys, ...args];
    try {
      return await this.send(keys[0], ["EVALSHA", script.sha, ...tail]);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith("NOSCRIPT")) throw error;
      return this.send(keys[0], ["EVAL", script.source, ...tail]);
    }
  }

  /** The same command on every primary (PING, INFO), each answer with its primary's address. */
  async onEveryPrimary(args: string[]): Promise<Array<{ address: string; reply: unknown }>> {
    if (this.cluster) {
      const masters = this.cluster.masters;
      return Promise.all(
        masters.map(async (master) => ({
          address: `${master.host}:${master.port}`,
          reply: await (await this.cluster!.nodeClient(master)).sendCommand(args),
        })),
      );
    }
    return [{ address: this.primaryAddress(), reply: await this.send(undefined, args) }];
  }

  /** Keys matching `match` on every primary, a page at a time. */
  async *scan(match: string, count: number): AsyncIterable<string[]> {
    const primaries: Array<(args: string[]) => Promise<unknown>> = this.cluster
      ? this.cluster.masters.map(
          (master) => async (args: string[]) => (await this.cluster!.nodeClient(master)).sendCommand(args),
        )
      : [(args: string[]) => this.send(undefined, args)];
    for (const send of primaries) {
      let cursor = "0";
      do {
        const reply = await send(["SCAN", cursor, "MATCH", match, "COUNT", String(count)]);
        if (!Array.isArray(reply) || reply.length !== 2) throw new Error("unexpected SCAN reply");
        cursor = String(reply[0]);
        yield (reply[1] as unknown[]).map(String);
      } while (cursor !== "0");
    }
  }

  /** Sharded pub/sub: each channel is served by its slot's primary. */
  async subscribe(channels: string[], listener: Listener): Promise<void> {
    if (this.standalone) await this.standalone.subscriber.sSubscribe(channels, listener);
    else if (this.sentinel) await this.sentinel.sSubscribe(channels, listener);
    else for (const channel of channels) await this.cluster!.sSubscribe(channel, listener);
  }

  /**
   * `WAIT replicas ms`: on the connection that carried this node's writes (every primary's, on a
   * Cluster); the smallest count any primary reached.
   */
  async wait(replicas: number, ms: number): Promise<number> {
    const args = ["WAIT", String(replicas), String(ms)];
    if (this.cluster) {
      const replies = await this.onEveryPrimary(args);
      return Math.min(...replies.map((r) => Number(r.reply)));
    }
    return Number(await this.send(undefined, args));
  }

  /** Primaries and their replicas, from each primary's `INFO replication`. */
  async topology(): Promise<RedisTopology> {
    const replies = await this.onEveryPrimary(["INFO", "replication"]);
    return {
      kind: this.kind,
      ...(this.settings.mode === "sentinel" ? { sentinelName: this.settings.sentinelName } : {}),
      primaries: replies.map(({ address, reply }) => ({ address, replicas: parseReplicas(String(reply)) })),
    };
  }

  /** The primary this node writes to (every primary of a Cluster; see `topology()` for replicas). */
  primaryAddress(): string {
    const settings = this.settings;
    if (settings.mode === "sentinel") {
      const node = this.sentinel?.getMasterNode();
      return node ? address(node) : "(no primary known)";
    }
    if (settings.mode === "cluster") return (this.cluster?.masters ?? []).map((m) => `${m.host}:${m.port}`).join(",");
    try {
      const url = new URL(settings.url);
      return `${url.hostname}:${url.port || "6379"}`;
    } catch {
      return "(unknown)";
    }
  }

  async close(): Promise<void> {
    if (this.standalone) {
      for (const client of [this.standalone.subscriber, this.standalone.client]) {
        if (client.isOpen) await client.close();
      }
    } else if (this.sentinel?.isOpen) await this.sentinel.close();
    else if (this.cluster?.isOpen) await this.cluster.close();
  }

  destroy(): void {
    try {
      if (this.standalone) {
        for (const client of [this.standalone.subscriber, this.standalone.client]) if (client.isOpen) client.destroy();
      } else if (this.sentinel) void this.sentinel.destroy().catch(() => undefined);
      else if (this.cluster?.isOpen) this.cluster.destroy();
    } catch {
      // already closed
    }
  }
}

function standaloneClient(
  url: string,
  timeoutMs: number,
  socket: { connectTimeout: number; reconnectStrategy: ConnectionOptions["reconnectStrategy"]; tls?: true },
) {
  return createClient({
    url,
    // while Redis is away a write fails at once (the request gets a 503) instead of queueing
    disableOfflineQueue: true,
    commandOptions: { timeout: timeoutMs },
    socket,
  });
}

/** `slave0:ip=…,port=…,state=online,offset=…,lag=0` lines of `INFO replication`. */
export function parseReplicas(info: string): RedisReplica[] {
  const replicas: RedisReplica[] = [];
  for (const line of info.split(/\r?\n/)) {
    const match = /^slave\d+:(.*)$/.exec(line.trim());
    if (!match) continue;
    const fields = new Map(match[1]!.split(",").map((pair) => pair.split("=") as [string, string]));
    const lag = Number(fields.get("lag"));
    replicas.push({
      address: `${fields.get("ip") ?? "?"}:${fields.get("port") ?? "?"}`,
      state: fields.get("state") ?? "unknown",
      lagSeconds: Number.isFinite(lag) ? lag : null,
    });
  }
  return replicas;
}

/**
 * node-redis times a command out only until it is written; once sent, it waits for the answer for
 * ever (answers come in order). A stalled Redis must not hold a request, so callers race this
 * deadline; the late answer is still read in order and then ignored.
 */
export function withDeadline<T>(command: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Redis did not answer ${what} within ${Math.round(ms)} ms`)), ms);
  });
  command.catch(() => undefined);
  return Promise.race([command, deadline]).finally(() => clearTimeout(timer));
}
