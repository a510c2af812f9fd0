/**
 * A cluster member in Redis mode: the tables stay in this node's memory, every local write is
 * stored in Redis by a script that keeps the greater stamp (confirmed by replicas where there
 * are some) and fanned out on sharded pub/sub. A heartbeat checks Redis's real health with a
 * deadline on every step, and notices a Redis that lost its data: the node then puts its own rows
 * back before it says it is ready. No libp2p.
 */
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
import { BackgroundTasks, collectTombstones } from "../background";
import { CLUSTER_NAME, loadOrCreateNodeKey } from "../identity";
import { LagTracker, newCounters } from "../replication";
import { ClusterRequestError, DEFAULT_REQUEST_TIMEOUT_MS, RequestHandlers } from "../rpc";
import { ClusterStore, DEFAULT_TOMBSTONE_TTL_MS } from "../store";
import type {
  Cluster,
  ClusterConfig,
  ClusterCounters,
  ClusterStatus,
  Logger,
  PeerStatus,
  RedisSettings,
  RedisStatus,
  RedisTimings,
  RequestHandler,
  StartClusterOptions,
} from "../types";
import { RedisAtomics } from "./atomics";
import { BucketStates, putBack, type Assessment, type BucketMeta } from "./buckets";
import { describeTarget, RedisConnection, withDeadline, type RedisTopology } from "./connection";
import { describeRedisError, RedisStartError } from "./errors";
import { parseRowMessage } from "./messages";
import { beatMembers, readBucketMetas, readRows } from "./reads";
import { BUCKETS, redisNames, SET_GENERATION, type RedisNames } from "./scripts";
import { checkPermissions, LegacyRows } from "./startup";
import { RedisWriter } from "./writer";

export const DEFAULT_REDIS_TIMINGS: RedisTimings = {
  heartbeatMs: 2_000,
  reconnectMinMs: 100,
  reconnectMaxMs: 5_000,
  scanCount: 1_000,
  tombstoneCollectMs: 10 * 60_000,
  startWaitMs: 20_000,
};

/** connection attempts at start before giving up with one clear line */
const START_ATTEMPTS = 3;

export async function startRedisCluster(
  config: ClusterConfig,
  settings: RedisSettings,
  log: Logger,
  options: StartClusterOptions = {},
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
    timings: { ...DEFAULT_REDIS_TIMINGS, ...options.redisTimings },
    tombstoneTtlMs: options.tombstoneTtlMs ?? DEFAULT_TOMBSTONE_TTL_MS,
  });
  try {
    await node.start();
  } catch (error) {
    await node.stop().catch(() => undefined);
    throw error;
  }
  return node;
}

class RedisClusterNode implements Cluster {
  readonly nodeId: string;
  readonly atomics: RedisAtomics;
  private readonly names: RedisNames;
  private readonly conn: RedisConnection;
  private readonly writer: RedisWriter;
  private readonly buckets = new BucketStates();
  private readonly channelBucket = new Map<string, number>();
  private readonly handlers: RequestHandlers;
  private readonly lag: LagTracker;
  private readonly counters: ClusterCounters = newCounters();
  private readonly background: BackgroundTasks;
  private readonly startedAt = Date.now();
  private readonly timings: RedisTimings;
  private readonly tombstoneTtlMs: number;
  private members: PeerStatus[] = [];
  /** rows each other member holds, from its heartbeat: who can re-seed a Redis that lost its data */
  private memberRows = new Map<string, number>();
  private topology: RedisTopology;
  private connection: RedisStatus["connection"] = "connecting";
  private everConnected = false;
  private loaded = false;
  private loading: Promise<void> | undefined;
  private loadAgain: string | undefined;
  private latencyMs: number | null = null;
  private lastLoadAt: number | null = null;
  private lastHealthyAt: number | null = null;
  private reconnects = 0;
  /** the last heartbeat failed: not ready until one succeeds and the tables are read again */
  private unhealthy = false;
  private recovering = false;
  private writeFailureLogged = false;
  private beating: Promise<void> | undefined;
  private reseeding: Promise<void> | undefined;
  private waitingLogged = false;
  private replicasShortLogged = false;
  private readonly reseeds: RedisStatus["reseeds"] = { running: false, count: 0, lastAt: null, rows: 0 };
  /** rows of the layout before buckets, moved over at start */
  private readonly legacy: LegacyRows;
  private stopping: Promise<void> | undefined;
  private unsubscribeStore: (() => void) | undefined;

  constructor(
    private readonly config: ClusterConfig,
    private readonly settings: RedisSettings,
    private readonly log: Logger,
    readonly store: ClusterStore,
    options: { timings: RedisTimings; tombstoneTtlMs: number },
  ) {
    this.nodeId = store.nodeId;
    this.timings = options.timings;
    this.tombstoneTtlMs = options.tombstoneTtlMs;
    this.background = new BackgroundTasks(log);
    this.names = redisNames(config.clusterName);
    for (let b = 0; b < BUCKETS; b += 1) this.channelBucket.set(this.names.channel(b), b);
    this.handlers = new RequestHandlers(log);
    this.lag = new LagTracker(() => store.clock.wallNow());
    const timings = this.timings;
    this.conn = new RedisConnection(
      settings,
      {
        lost: (error) => this.lost(error),
        resubscribed: () => {
          if (!this.everConnected || this.stopping) return;
          this.reconnects += 1;
          void this.load("resubscribed").catch((error: unknown) => this.sick(error));
        },
      },
      {
        timeoutMs: settings.timeoutMs,
        reconnectStrategy: (retries, cause) => {
          // at start a wrong password or host should end the process with one line, not retry for ever
          if (!this.everConnected) return retries + 1 >= START_ATTEMPTS ? cause : timings.reconnectMinMs;
          if (this.stopping) return cause;
          const backoff = Math.min(timings.reconnectMaxMs, timings.reconnectMinMs * 2 ** Math.min(retries, 10));
          return Math.round(backoff / 2 + Math.random() * (backoff / 2));
        },
      },
    );
    this.topology = { kind: this.conn.kind, primaries: [] };
    this.legacy = new LegacyRows(this.conn, this.names, settings.timeoutMs);
    const onStored = (bucket: number, seq: number) => this.buckets.storedAs(bucket, seq);
    const onUnseeded = () => void this.beat();
    this.writer = new RedisWriter({
      conn: this.conn,
      names: this.names,
      store,
      log,
      counters: this.counters,
      timeoutMs: settings.timeoutMs,
      tombstoneTtlMs: this.tombstoneTtlMs,
      waitSetting: settings.waitReplicas ?? "auto",
      onFailure: (error) => this.writeFailed(error),
      onUnseeded,
      onStored,
    });
    this.atomics = new RedisAtomics({
      conn: this.conn,
      names: this.names,
      store,
      timeoutMs: settings.timeoutMs,
      usable: () => this.isReady(),
      onUnseeded,
      onStored,
    });
  }

  async start(): Promise<void> {
    const where = describeTarget(this.settings);
    try {
      await withDeadline(this.conn.connect(), Math.max(5_000, this.settings.timeoutMs * 3), "the first connection");
    } catch (error) {
      throw new RedisStartError(describeRedisError(error, this.settings));
    }
    this.everConnected = true;
    this.connection = "connected";
    await checkPermissions(this.conn, this.names, this.settings, where);
    try {
      this.applyTopology(await withDeadline(this.conn.topology(), this.settings.timeoutMs, "INFO replication"));
      const channels = [...this.channelBucket.keys()];
      await withDeadline(
        this.conn.subscribe(channels, (message, channel) => this.onMessage(message, channel)),
        this.settings.timeoutMs,
        "SSUBSCRIBE",
      );
      await this.legacy.read(this.store, this.timings.scanCount, this.log);
    } catch (error) {
      throw new RedisStartError(describeRedisError(error, this.settings));
    }
    // subscribed before loading: a write made meanwhile arrives by one path or the other
    this.unsubscribeStore = this.store.onLocalWrite((record) => this.writer.write(record));
    // the first heartbeats find the buckets' state: a Redis that lost its data is re-seeded first
    const until = Date.now() + this.timings.startWaitMs;
    while (!this.stopping) {
      await this.beat();
      await this.reseeding;
      await this.loading?.catch(() => undefined);
      if (this.isReady()) break;
      if (Date.now() > until) {
        this.log.warn("cluster: Redis is not settled yet; the node serves reads and says ready once it is", {
          redis: where,
        });
        break;
      }
      await sleep(Math.min(250, this.timings.heartbeatMs / 4));
    }
    this.background.every(this.timings.heartbeatMs, () => void this.beat());
    this.background.every(this.timings.tombstoneCollectMs, () => {
      collectTombstones(this.store, this.counters, this.log);
      this.atomics.sweepExpired(this.store.clock.wallNow());
    });
    this.log.info("cluster: node started in Redis mode", {
      nodeId: this.nodeId,
      clusterName: this.config.clusterName,
      redis: where,
      topology: this.topology.kind,
      primaries: this.topology.primaries.map((p) => p.address),
      waitReplicas: this.writer.replicasWanted,
      keyPrefix: this.names.prefix,
      records: this.counters.recordsPulled,
    });
  }

  isReady(): boolean {
    if (this.stopping || !this.loaded || this.unhealthy || this.reseeding || !this.buckets.settled) return false;
    // a heartbeat that stalls is bounded by its deadline; one that never starts is caught here
    const freshMs = 2 * this.timings.heartbeatMs + this.settings.timeoutMs;
    if (this.lastHealthyAt === null || Date.now() - this.lastHealthyAt > freshMs) return false;
    return this.conn.isReady();
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
   * Resolves once Redis has acknowledged (and, where the primary has replicas, a replica has
   * confirmed) every local write made before the call. Rejects with ClusterUnavailableError
   * while Redis is unreachable, slow, or being re-seeded; never hangs.
   */
  durable(): Promise<void> {
    return this.writer.durable();
  }

  status(): ClusterStatus {
    return {
      mode: "redis",
      redis: {
        url: describeTarget(this.settings),
        keyPrefix: this.names.prefix,
        connection: this.connection,
        latencyMs: this.latencyMs,
        lastLoadAt: this.lastLoadAt,
        reconnects: this.reconnects,
        unacknowledged: this.writer.size,
        topology: {
          kind: this.topology.kind,
          ...(this.topology.sentinelName ? { sentinelName: this.topology.sentinelName } : {}),
          primaries: this.topology.primaries.map((p) => ({
            address: p.address,
            replicas: p.replicas.map((r) => ({ ...r })),
          })),
        },
        waitReplicas: {
          setting: this.settings.waitReplicas ?? "auto",
          effective: this.writer.replicasWanted,
          shortfalls: this.writer.shortfalls,
        },
        reseeds: { ...this.reseeds, running: this.reseeding !== undefined },
        lastHealthyAt: this.lastHealthyAt,
      },
      nodeId: this.nodeId,
      clusterName: this.config.clusterName,
      ready: this.isReady(),
      readyReason: this.isReady() ? "redis" : null,
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
    this.writer.stop();
    // a stalled Redis must not hold the shutdown: each step has a deadline
    const ms = this.settings.timeoutMs;
    if (this.everConnected && this.conn.isReady()) {
      await withDeadline(beatMembers(this.conn, this.names, this.nodeId, "", 0), ms, "the farewell").catch(
        () => undefined,
      );
    }
    await withDeadline(this.conn.close(), ms, "close").catch(() => this.conn.destroy());
    this.log.info("cluster: node stopped", { nodeId: this.nodeId });
  }

  // --- heartbeat: Redis's real health, members, bucket state, topology ---

  private beat(): Promise<void> {
    if (this.stopping || !this.everConnected) return Promise.resolve();
    this.beating ??= this.beatOnce().finally(() => {
      this.beating = undefined;
    });
    return this.beating;
  }

  private async beatOnce(): Promise<void> {
    const known = this.buckets.snapshot();
    const started = performance.now();
    try {
      const [, members, metas, topology] = await withDeadline(
        Promise.all([
          this.conn.onEveryPrimary(["PING"]).then(() => {
            this.latencyMs = Math.round((performance.now() - started) * 100) / 100;
          }),
          this.memberBeat(),
          readBucketMetas(this.conn, this.names),
          this.conn.topology(),
        ]),
        this.settings.timeoutMs,
        "the heartbeat (PING, members, bucket state, INFO replication)",
      );
      this.members = members;
      this.applyTopology(topology);
      this.lastHealthyAt = Date.now();
      this.settle(metas, known);
    } catch (error) {
      this.sick(error);
    }
  }

  private async memberBeat(): Promise<PeerStatus[]> {
    const rows = Object.values(this.store.sizes()).reduce((a, b) => a + b, 0);
    const about = JSON.stringify({ meta: this.config.meta ?? {}, startedAt: this.startedAt, rows });
    const view = await beatMembers(this.conn, this.names, this.nodeId, about, this.timings.heartbeatMs * 3);
    this.memberRows = view.rows;
    return view.members;
  }

  /** REDIS_WAIT_REPLICAS: "auto" waits for one replica while every primary has one online. */
  private applyTopology(topology: RedisTopology): void {
    this.topology = topology;
    const setting = this.settings.waitReplicas ?? "auto";
    const everyPrimaryHasOne =
      topology.primaries.length > 0 && topology.primaries.every((p) => p.replicas.some((r) => r.state === "online"));
    const wanted = setting === "auto" ? (everyPrimaryHasOne ? 1 : 0) : setting;
    if (wanted !== this.writer.replicasWanted && this.everConnected) {
      this.log.info("cluster: writes now wait for Redis replicas", { replicas: wanted, setting });
    }
    this.writer.replicasWanted = wanted;
    // strict: say once that too few replicas are online, rather than only answering 503s
    const fewest = Math.min(...topology.primaries.map((p) => p.replicas.filter((r) => r.state === "online").length));
    const short = setting !== "auto" && topology.primaries.length > 0 && fewest < setting;
    if (short && !this.replicasShortLogged) {
      this.log.warn("cluster: REDIS_WAIT_REPLICAS asks for more replicas than are online; writes are refused", {
        setting,
        online: fewest,
      });
    }
    this.replicasShortLogged = short;
  }

  /**
   * Redis answered a heartbeat: a Redis that lost rows is re-seeded (before anything else, so
   * the node never says ready over an empty Redis); after an outage the tables are read again;
   * missed pub/sub messages are read again.
   */
  private settle(metas: BucketMeta[], known: number[]): void {
    const found = this.buckets.assess(metas, known, Date.now());
    // rows read from the layout before buckets go into every bucket, whatever Redis holds there
    if (this.legacy.pending) {
      const others = new Set([...found.missing, ...found.changed]);
      found.behind = [...Array(BUCKETS).keys()].filter((b) => !others.has(b));
    }
    if (found.missing.length + found.changed.length + found.behind.length > 0) {
      this.reseeding ??= this.reseed(found, metas)
        .catch((error: unknown) => this.sick(error))
        .finally(() => {
          this.reseeding = undefined;
        });
      return;
    }
    if (this.reseeding || this.recovering) return;
    if (this.unhealthy) {
      void this.recover();
      return;
    }
    this.writer.resend();
    if (!this.loaded) void this.load("start").catch((error: unknown) => this.sick(error));
    else if (found.missed) void this.load("missed messages").catch((error: unknown) => this.sick(error));
  }

  /**
   * Put this node's rows back into the buckets Redis lost (or went back in time on), then open
   * the buckets that have no generation: at once when this node held rows; a node that holds
   * none waits while another member holding rows re-seeds, and opens them only once no such
   * member showed up for a heartbeat and a half (a new, empty Redis).
   */
  private async reseed(found: Assessment, metas: BucketMeta[]): Promise<void> {
    const rowsHeld = Object.values(this.store.sizes()).reduce((a, b) => a + b, 0);
    const mayOpen =
      rowsHeld > 0 ||
      (this.buckets.missingSince !== undefined &&
        Date.now() - this.buckets.missingSince >= this.timings.heartbeatMs * 1.5 &&
        [...this.memberRows.values()].every((rows) => rows === 0));
    const lost = new Set([...found.missing, ...found.changed, ...found.behind]);
    const started = Date.now();
    let written = 0;
    if (rowsHeld > 0) {
      this.log.warn("cluster: Redis lost rows; putting this node's rows back before serving", {
        missing: found.missing.length,
        reseededElsewhere: found.changed.length,
        behind: found.behind.length,
        rows: rowsHeld,
      });
      written = await putBack(
        {
          store: this.store,
          tombstoneTtlMs: this.tombstoneTtlMs,
          seed: (record) => this.writer.seed(record),
          stopping: () => this.stopping !== undefined,
        },
        lost,
        this.store.clock.wallNow(),
      );
    } else if (!mayOpen) {
      if (!this.waitingLogged) {
        this.waitingLogged = true;
        this.log.info(
          "cluster: Redis holds no generation yet (new, or emptied); waiting a heartbeat and a half for a member holding rows to put them back",
        );
      }
      return;
    }
    const generation = `${Date.now().toString(36)}-${randomBytes(6).toString("hex")}`;
    for (const b of lost) {
      const reply = await withDeadline(
        this.conn.run(SET_GENERATION, [this.names.meta(b)], [metas[b]?.gen ?? generation]),
        this.settings.timeoutMs,
        "HSETNX gen",
      );
      const [gen, seq] = Array.isArray(reply) ? reply : [];
      if (typeof gen !== "string") continue;
      this.buckets.adopt(b, gen);
      // a Redis that went back in time counts on from where it is now, not from what this node saw
      this.buckets.rebase(b, Number(seq ?? 0) || 0);
    }
    this.waitingLogged = false;
    await this.legacy.remove();
    if (written > 0 || this.loaded) {
      // not the first opening of a new Redis: a re-seed
      this.reseeds.count += 1;
      this.reseeds.lastAt = Date.now();
      this.reseeds.rows = written;
      this.log.info("cluster: Redis re-seeded from this node's rows", { rows: written, ms: Date.now() - started });
    }
    this.writer.resend();
    const wasUnhealthy = this.unhealthy;
    if (wasUnhealthy) this.reconnects += 1;
    await this.load(this.loaded ? "re-seed" : "start");
    if (wasUnhealthy) this.healed();
  }

  /** A heartbeat or a load failed: not ready until a heartbeat succeeds and the tables are read again. */
  private sick(error: unknown): void {
    if (this.stopping) return;
    this.connection = this.conn.isReady() ? "connected" : "reconnecting";
    if (this.unhealthy) return;
    this.unhealthy = true;
    this.log.warn("cluster: Redis is unreachable or does not answer; reads continue from memory, writes are refused", {
      error: describeRedisError(error, this.settings),
    });
  }

  /** A connection dropped (Redis restarted, a failover): not ready from this moment. */
  private lost(error: unknown): void {
    // at start the one line comes from RedisStartError instead
    if (this.stopping || !this.everConnected) return;
    this.sick(error);
    void this.beat();
  }

  /** A write was not stored in time: the heartbeat finds out at once whether Redis is the cause. */
  private writeFailed(error: unknown): void {
    if (this.stopping) return;
    if (!this.writeFailureLogged) {
      this.writeFailureLogged = true;
      this.log.warn("cluster: Redis did not store a write in time; it is sent again", {
        error: describeRedisError(error, this.settings),
      });
    }
    void this.beat();
  }

  private healed(): void {
    this.unhealthy = false;
    this.writeFailureLogged = false;
    this.connection = "connected";
    this.log.info("cluster: Redis is reachable again", { reconnects: this.reconnects });
  }

  /** Healthy again: store what Redis missed, re-read what this node missed, then say ready. */
  private async recover(): Promise<void> {
    if (this.recovering) return;
    this.recovering = true;
    this.reconnects += 1;
    try {
      this.writer.resend();
      await this.load("reconnect");
      this.healed();
    } catch (error) {
      this.sick(error);
    } finally {
      this.recovering = false;
    }
  }

  // --- fan-out and loading ---

  private onMessage(message: string, channel: string): void {
    const bucket = this.channelBucket.get(channel);
    const parsed = parseRowMessage(message);
    if (!parsed || bucket === undefined) {
      this.counters.rejected.malformed = (this.counters.rejected.malformed ?? 0) + 1;
      return;
    }
    if (this.buckets.received(bucket, parsed.seq)) {
      void this.load("missed messages").catch((error: unknown) => this.sick(error));
    }
    const { record } = parsed;
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
      this.loadAgain = reason;
      return this.loading;
    }
    this.loading = this.loadOnce(reason).finally(() => {
      this.loading = undefined;
      const again = this.loadAgain;
      this.loadAgain = undefined;
      if (again && !this.stopping) void this.load(again).catch((error: unknown) => this.sick(error));
    });
    return this.loading;
  }

  private async loadOnce(reason: string): Promise<void> {
    const started = Date.now();
    const ms = this.settings.timeoutMs;
    this.buckets.loading(await withDeadline(readBucketMetas(this.conn, this.names), ms, "the bucket state"));
    const applied = await readRows(this.conn, this.names, this.store, {
      scanCount: this.timings.scanCount,
      timeoutMs: ms,
      stopping: () => this.stopping !== undefined,
    });
    this.counters.catchUps += 1;
    this.counters.recordsPulled += applied;
    this.lastLoadAt = Date.now();
    this.loaded = true;
    this.log.info("cluster: loaded the tables from Redis", { reason, records: applied, ms: Date.now() - started });
  }
}
