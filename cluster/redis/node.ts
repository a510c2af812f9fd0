/**
 * A cluster member in Redis mode: the tables stay in this node's memory, every local write is
 * stored in Redis by a script that keeps the greater stamp and fanned out on pub/sub, and the
 * node loads the tables from Redis at start and after every reconnect. No libp2p.
 */
import { randomBytes } from "node:crypto";
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
import { createClient } from "redis";
import { z } from "zod";
import { BackgroundTasks, collectTombstones } from "../background";
import { ClusterUnavailableError } from "../errors";
import { CLUSTER_NAME, loadOrCreateNodeKey } from "../identity";
import { LagTracker, newCounters } from "../replication";
import { ClusterRequestError, DEFAULT_REQUEST_TIMEOUT_MS, RequestHandlers } from "../rpc";
import { ClusterStore, DEFAULT_TOMBSTONE_TTL_MS, releaseEpoch, type RecordEnvelope } from "../store";
import type { ClusterAtomics, Reservation } from "../transport";
import type {
  Cluster,
  ClusterConfig,
  ClusterCounters,
  ClusterStatus,
  Logger,
  PeerStatus,
  RedisSettings,
  RedisStatus,
  RequestHandler,
  StartClusterOptions,
} from "../types";
import { recordSchema, toRecord } from "../wire";
import { describeRedisError, redactRedisUrl, RedisStartError } from "./errors";
import { keyPrefix, RESERVE_SLOT, redisNames, WRITE_ROW, type RedisNames, type Script } from "./scripts";

type Client = ReturnType<typeof createClient>;

export interface RedisTimings {
  /** membership heartbeat and latency probe; a member key lives 3 heartbeats */
  heartbeatMs: number;
  /** first and largest reconnect backoff */
  reconnectMinMs: number;
  reconnectMaxMs: number;
  /** rows per SCAN step while loading */
  scanCount: number;
  tombstoneCollectMs: number;
}

export const DEFAULT_REDIS_TIMINGS: RedisTimings = {
  heartbeatMs: 2_000,
  reconnectMinMs: 100,
  reconnectMaxMs: 5_000,
  scanCount: 1_000,
  tombstoneCollectMs: 10 * 60_000,
};

/** connection attempts at start before giving up with one clear line */
const START_ATTEMPTS = 3;

export async function startRedisCluster(
  config: ClusterConfig,
  settings: RedisSettings,
  log: Logger,
  options: StartClusterOptions & { redisTimings?: Partial<RedisTimings> } = {},
): Promise<Cluster> {
  if (!CLUSTER_NAME.test(config.clusterName)) {
    throw new Error(`invalid cluster name "${config.clusterName}": letters, digits, . _ - (at most 64)`);
  }
  // the node key gives a stable node id across restarts (links and sessions name their node)
  const nodeId = peerIdFromPrivateKey(await loadOrCreateNodeKey(config.dataDir)).toString();
  const store = new ClusterStore({
    nodeId,
    clock: options.clock,
    tombstoneTtlMs: options.tombstoneTtlMs,
    maxClockSkewMs: options.maxClockSkewMs,
  });
  for (const [name, tableOptions] of Object.entries(options.tables ?? {})) store.table(name, tableOptions);
  const node = new RedisClusterNode(config, settings, log, store, {
    ...DEFAULT_REDIS_TIMINGS,
    ...options.redisTimings,
  });
  node.tombstoneTtlMs = options.tombstoneTtlMs ?? DEFAULT_TOMBSTONE_TTL_MS;
  try {
    await node.start();
  } catch (error) {
    await node.stop().catch(() => undefined);
    throw error;
  }
  return node;
}

interface Unacknowledged {
  record: RecordEnvelope;
  inFlight: boolean;
}

interface Waiter {
  resolve(): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

/** a member's heartbeat key holds this */
const memberSchema = z.object({ meta: z.record(z.string().max(1024)), startedAt: z.number() });

class RedisClusterNode implements Cluster {
  readonly nodeId: string;
  readonly atomics: ClusterAtomics;
  tombstoneTtlMs = DEFAULT_TOMBSTONE_TTL_MS;
  private readonly names: RedisNames;
  private readonly prefix: string;
  private readonly client: Client;
  private readonly subscriber: Client;
  private readonly handlers: RequestHandlers;
  private readonly lag: LagTracker;
  private readonly counters: ClusterCounters = newCounters();
  /** local writes Redis has not acknowledged: `table\0key` → the newest such write */
  private readonly unacked = new Map<string, Unacknowledged>();
  private readonly waiters = new Set<Waiter>();
  private readonly background: BackgroundTasks;
  private readonly startedAt = Date.now();
  private members: PeerStatus[] = [];
  private connection: RedisStatus["connection"] = "connecting";
  private everConnected = false;
  private loaded = false;
  private loading: Promise<void> | undefined;
  private loadAgain = false;
  private latencyMs: number | null = null;
  private lastLoadAt: number | null = null;
  private reconnects = 0;
  private outageLogged = false;
  private stalled = false;
  private heartbeating = false;
  private stopping: Promise<void> | undefined;
  private unsubscribeStore: (() => void) | undefined;

  constructor(
    private readonly config: ClusterConfig,
    private readonly settings: RedisSettings,
    private readonly log: Logger,
    readonly store: ClusterStore,
    private readonly timings: RedisTimings,
  ) {
    this.nodeId = store.nodeId;
    this.background = new BackgroundTasks(log);
    this.prefix = keyPrefix(config.clusterName);
    this.names = redisNames(this.prefix);
    this.handlers = new RequestHandlers(log);
    this.lag = new LagTracker(() => store.clock.wallNow());
    const reconnectStrategy = (retries: number, cause: Error): number | Error => {
      // at start a wrong password or host should end the process with one line, not retry for ever
      if (!this.everConnected) return retries + 1 >= START_ATTEMPTS ? cause : timings.reconnectMinMs;
      if (this.stopping) return cause;
      const backoff = Math.min(timings.reconnectMaxMs, timings.reconnectMinMs * 2 ** Math.min(retries, 10));
      return Math.round(backoff / 2 + Math.random() * (backoff / 2));
    };
    this.client = createClient({
      url: settings.url,
      // while Redis is away a write fails at once (the request gets a 503) instead of queueing
      disableOfflineQueue: true,
      commandOptions: { timeout: settings.timeoutMs },
      socket: { connectTimeout: settings.timeoutMs, reconnectStrategy },
    });
    this.subscriber = this.client.duplicate();
    this.atomics = new RedisAtomics(this.client, this.names, () => store.clock.wallNow(), settings.timeoutMs);
    this.watch(this.client, "commands");
    this.watch(this.subscriber, "pub/sub");
  }

  async start(): Promise<void> {
    try {
      await this.client.connect();
      await this.subscriber.connect();
    } catch (error) {
      throw new RedisStartError(describeRedisError(error, this.settings.url));
    }
    this.everConnected = true;
    this.connection = "connected";
    await this.subscriber.subscribe(this.names.recordsChannel, (message) => this.onMessage(message));
    // subscribed before loading: a write made meanwhile arrives by one path or the other
    this.unsubscribeStore = this.store.onLocalWrite((record) => this.write(record));
    await this.load("start");
    await this.heartbeat();
    this.background.every(this.timings.heartbeatMs, () => void this.heartbeat());
    this.background.every(this.timings.tombstoneCollectMs, () =>
      collectTombstones(this.store, this.counters, this.log),
    );
    this.log.info("cluster: node started in Redis mode", {
      nodeId: this.nodeId,
      clusterName: this.config.clusterName,
      redis: redactRedisUrl(this.settings.url),
      keyPrefix: this.prefix,
      records: this.counters.recordsPulled,
    });
  }

  isReady(): boolean {
    return (
      this.loaded && !this.stalled && this.connection === "connected" && this.client.isReady && this.subscriber.isReady
    );
  }

  handle(method: string, handler: RequestHandler): void {
    this.handlers.register(method, handler);
  }

  /** Redis mode has no node-to-node requests: what needs one answer is decided in Redis. */
  async request(
    peerId: string,
    method: string,
    body: unknown,
    timeoutMs = DEFAULT_REQUEST_TIMEOUT_MS,
  ): Promise<unknown> {
    if (peerId !== this.nodeId) {
      throw new ClusterRequestError("unreachable", "Redis mode has no requests between nodes");
    }
    const copy: unknown = body === undefined ? undefined : JSON.parse(JSON.stringify(body));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ClusterRequestError("timeout", `request ${method} timed out`)), timeoutMs);
    });
    try {
      const response = await Promise.race([this.handlers.invoke(method, copy, this.nodeId), deadline]);
      if (!response.ok) throw new ClusterRequestError("remote-error", response.error.message);
      return response.body;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Resolves once Redis has acknowledged every local write so far. While Redis is unreachable, or
   * when it does not answer within the timeout, rejects with ClusterUnavailableError.
   */
  durable(): Promise<void> {
    if (this.unacked.size === 0) return Promise.resolve();
    if (this.stopping || !this.client.isReady) {
      return Promise.reject(new ClusterUnavailableError("redis", "Redis is unreachable: the change was not stored"));
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          reject(
            new ClusterUnavailableError(
              "redis",
              `Redis did not acknowledge the change within ${this.settings.timeoutMs} ms`,
            ),
          );
        }, this.settings.timeoutMs),
      };
      this.waiters.add(waiter);
    });
  }

  status(): ClusterStatus {
    return {
      mode: "redis",
      redis: {
        url: redactRedisUrl(this.settings.url),
        keyPrefix: this.prefix,
        connection: this.connection,
        latencyMs: this.latencyMs,
        lastLoadAt: this.lastLoadAt,
        reconnects: this.reconnects,
        unacknowledged: this.unacked.size,
      },
      nodeId: this.nodeId,
      clusterName: this.config.clusterName,
      ready: this.isReady(),
      addresses: [],
      meta: { ...(this.config.meta ?? {}) },
      peers: this.members.map((m) => ({ ...m, meta: { ...m.meta } })),
      meshSize: 0,
      tables: this.store.sizes(),
      lastCatchUpAt: this.lastLoadAt,
      counters: { ...this.counters, rejected: { ...this.counters.rejected } },
      replicationLagMs: this.lag.summary(),
      // no cluster port in Redis mode
      inboundRefused: {},
    };
  }

  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    this.background.stop();
    this.unsubscribeStore?.();
    this.connection = "stopped";
    this.failWaiters(new ClusterUnavailableError("redis", "the cluster node is stopping"));
    // a stalled Redis must not hold the shutdown: each step has a deadline
    const ms = this.settings.timeoutMs;
    if (this.client.isReady) {
      await withDeadline(this.client.del(this.names.member(this.nodeId)), ms, "DEL").catch(() => undefined);
    }
    for (const client of [this.subscriber, this.client]) {
      if (!client.isOpen) continue;
      await withDeadline(client.close(), ms, "close").catch(() => client.destroy());
    }
    this.log.info("cluster: node stopped", { nodeId: this.nodeId });
  }

  // --- writes ---

  private write(record: RecordEnvelope): void {
    const id = `${record.table}\u0000${record.key}`;
    const entry: Unacknowledged = { record, inFlight: false };
    this.unacked.set(id, entry);
    this.send(id, entry);
  }

  private send(id: string, entry: Unacknowledged): void {
    if (this.stopping) return;
    const { record } = entry;
    entry.inFlight = true;
    this.counters.messagesOut += 1;
    const json = JSON.stringify(record);
    const args = [
      String(record.stamp.t),
      String(record.stamp.c),
      record.stamp.n,
      json,
      this.store.mergeRule(record.table) === "first-writer-wins" ? "fww" : "lww",
      this.names.recordsChannel,
      String(this.tombstoneTtlMs),
      record.value === null ? "1" : "0",
      String(releaseEpoch(record)),
    ];
    // commands issued in one turn of the event loop travel to Redis in one pipeline
    runScript(this.client, WRITE_ROW, [this.names.row(record.table, record.key)], args)
      .then((reply) => {
        if (reply !== 1 && typeof reply === "string") {
          // Redis holds a version that wins (a claim made first elsewhere): take it
          const winner = parseRecord(reply);
          if (winner) this.store.applyRemote(winner, "sync");
        }
        entry.inFlight = false;
        if (this.unacked.get(id) === entry) this.unacked.delete(id);
        if (this.unacked.size === 0) this.resolveWaiters();
      })
      .catch((error: unknown) => {
        entry.inFlight = false;
        this.noteOutage(error);
        this.failWaiters(
          new ClusterUnavailableError("redis", `Redis did not store the change: ${(error as Error).message}`),
        );
      });
  }

  private resolveWaiters(): void {
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.resolve();
    }
    this.waiters.clear();
  }

  private failWaiters(error: Error): void {
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
    this.waiters.clear();
  }

  // --- fan-out and loading ---

  private onMessage(message: string): void {
    const record = parseRecord(message);
    if (!record) {
      this.counters.rejected.malformed = (this.counters.rejected.malformed ?? 0) + 1;
      return;
    }
    if (record.stamp.n === this.nodeId) return;
    this.counters.messagesIn += 1;
    const outcome = this.store.applyRemote(record);
    if (outcome === "applied") this.lag.add(record.stamp.t);
    else if (outcome === "rejected") {
      this.counters.rejected["record-rejected"] = (this.counters.rejected["record-rejected"] ?? 0) + 1;
    }
  }

  /** Read every row from Redis in SCAN steps, yielding between them; one load at a time. */
  private load(reason: string): Promise<void> {
    if (this.loading) {
      this.loadAgain = true;
      return this.loading;
    }
    this.loading = this.loadOnce(reason).finally(() => {
      this.loading = undefined;
      if (this.loadAgain && !this.stopping) {
        this.loadAgain = false;
        void this.load("again").catch(() => undefined);
      }
    });
    return this.loading;
  }

  private async loadOnce(reason: string): Promise<void> {
    const started = Date.now();
    let applied = 0;
    let cursor = "0";
    do {
      const reply = await this.client.scan(cursor, { MATCH: this.names.rowPattern, COUNT: this.timings.scanCount });
      cursor = String(reply.cursor);
      if (reply.keys.length > 0) {
        const values = await Promise.all(reply.keys.map((key) => this.client.hGet(key, "r")));
        for (const value of values) {
          const record = typeof value === "string" ? parseRecord(value) : undefined;
          if (!record) continue;
          if (this.store.applyRemote(record, "sync") === "applied") applied += 1;
        }
      }
      await yieldToEventLoop();
    } while (cursor !== "0" && !this.stopping);
    this.counters.catchUps += 1;
    this.counters.recordsPulled += applied;
    this.lastLoadAt = Date.now();
    this.loaded = true;
    this.log.info("cluster: loaded the tables from Redis", { reason, records: applied, ms: Date.now() - started });
  }

  // --- connection ---

  private watch(client: Client, role: string): void {
    client.on("error", (error: Error) => this.noteOutage(error, role));
    client.on("reconnecting", () => {
      if (this.stopping || !this.everConnected) return;
      this.connection = "reconnecting";
    });
    client.on("ready", () => {
      if (!this.everConnected || this.stopping) return;
      if (!this.client.isReady || !this.subscriber.isReady) return;
      void this.recover();
    });
  }

  private noteOutage(error: unknown, role = "commands"): void {
    // at start the one line comes from RedisStartError instead
    if (this.stopping || !this.everConnected) return;
    if (!this.client.isReady || !this.subscriber.isReady) this.connection = "reconnecting";
    if (this.outageLogged) return;
    this.outageLogged = true;
    this.log.warn("cluster: Redis is unreachable; reads continue from memory, writes are refused", {
      role,
      error: describeRedisError(error, this.settings.url),
    });
  }

  /** Both connections are back: store what Redis missed, then re-read what this node missed. */
  private async recover(): Promise<void> {
    this.reconnects += 1;
    try {
      for (const [id, entry] of this.unacked) if (!entry.inFlight) this.send(id, entry);
      await this.load("reconnect");
      this.connection = "connected";
      this.outageLogged = false;
      this.log.info("cluster: Redis is reachable again", { reconnects: this.reconnects });
      await this.heartbeat();
    } catch (error) {
      this.noteOutage(error);
    }
  }

  private async heartbeat(): Promise<void> {
    if (this.stopping || !this.client.isReady || this.heartbeating) return;
    this.heartbeating = true;
    try {
      const started = performance.now();
      await withDeadline(this.client.ping(), this.settings.timeoutMs, "PING");
      this.latencyMs = Math.round((performance.now() - started) * 100) / 100;
      if (this.stalled) {
        this.stalled = false;
        this.log.info("cluster: Redis answers again", { latencyMs: this.latencyMs });
      }
      const about = JSON.stringify({ meta: this.config.meta ?? {}, startedAt: this.startedAt });
      await this.client.set(this.names.member(this.nodeId), about, { PX: this.timings.heartbeatMs * 3 });
      this.members = await this.readMembers();
    } catch (error) {
      // connected but silent: not ready, so a load balancer sends people elsewhere
      if (this.client.isReady && !this.stalled) {
        this.stalled = true;
        this.log.warn("cluster: Redis does not answer; writes are refused until it does", {
          error: (error as Error).message,
        });
      }
      this.noteOutage(error);
    } finally {
      this.heartbeating = false;
    }
  }

  private async readMembers(): Promise<PeerStatus[]> {
    const keys: string[] = [];
    let cursor = "0";
    do {
      const reply = await this.client.scan(cursor, { MATCH: this.names.memberPattern, COUNT: 1000 });
      cursor = String(reply.cursor);
      keys.push(...reply.keys);
    } while (cursor !== "0" && keys.length < 10_000);
    if (keys.length === 0) return [];
    const values = await this.client.mGet(keys);
    const members: PeerStatus[] = [];
    keys.forEach((key, i) => {
      const id = key.slice(this.names.memberPrefix.length);
      const value = values[i];
      if (id === this.nodeId || typeof value !== "string") return;
      members.push({ id, connected: true, addresses: [], pingMs: null, meta: parseMeta(value) });
    });
    return members.sort((a, b) => (a.id < b.id ? -1 : 1));
  }
}

/** Atomic decisions in Redis: the same answer whichever node asks. */
class RedisAtomics implements ClusterAtomics {
  readonly scope = "cluster" as const;

  constructor(
    private readonly client: Client,
    private readonly names: RedisNames,
    private readonly now: () => number,
    private readonly timeoutMs: number,
  ) {}

  async claimOnce(name: string, key: string, ttlMs: number): Promise<boolean> {
    const reply = await this.guard(() =>
      this.client.set(this.names.claim(name, key), "1", { NX: true, PX: Math.max(1, Math.round(ttlMs)) }),
    );
    return reply === "OK";
  }

  async reserve(name: string, key: string, limit: number, windowMs: number): Promise<Reservation> {
    const id = randomBytes(9).toString("base64url");
    const reply = await this.guard(() =>
      runScript(
        this.client,
        RESERVE_SLOT,
        [this.names.window(name, key)],
        [String(this.now()), String(windowMs), String(limit), id],
      ),
    );
    if (!Array.isArray(reply) || reply.length !== 2) throw new ClusterUnavailableError("redis", "unexpected reply");
    return Number(reply[0]) === 1 ? { ok: true, id } : { ok: false, retryAfterMs: Number(reply[1]) };
  }

  async release(name: string, key: string, id: string): Promise<void> {
    await this.guard(() => this.client.zRem(this.names.window(name, key), id));
  }

  private async guard<T>(command: () => Promise<T>): Promise<T> {
    if (!this.client.isReady) throw new ClusterUnavailableError("redis", "Redis is unreachable");
    try {
      return await withDeadline(command(), this.timeoutMs, "an atomic decision");
    } catch (error) {
      throw new ClusterUnavailableError("redis", (error as Error).message);
    }
  }
}

/**
 * node-redis times a command out only until it is written; once sent, it waits for the answer for
 * ever (answers come in order). A stalled Redis must not hold a request, so callers race this
 * deadline; the late answer is still read in order and then ignored.
 */
function withDeadline<T>(command: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Redis did not answer ${what} within ${ms} ms`)), ms);
  });
  command.catch(() => undefined);
  return Promise.race([command, deadline]).finally(() => clearTimeout(timer));
}

async function runScript(client: Client, script: Script, keys: string[], args: string[]): Promise<unknown> {
  try {
    return await client.evalSha(script.sha, { keys, arguments: args });
  } catch (error) {
    // first use on this Redis (or after its restart): load the script with the call
    if (!(error instanceof Error) || !error.message.startsWith("NOSCRIPT")) throw error;
    return client.eval(script.source, { keys, arguments: args });
  }
}

function parseRecord(json: string): RecordEnvelope | undefined {
  try {
    const parsed = recordSchema.safeParse(JSON.parse(json));
    return parsed.success ? toRecord(parsed.data) : undefined;
  } catch {
    return undefined;
  }
}

function parseMeta(json: string): Record<string, string> {
  try {
    const parsed = memberSchema.safeParse(JSON.parse(json));
    return parsed.success ? parsed.data.meta : {};
  } catch {
    return {};
  }
}
