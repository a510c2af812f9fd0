import type { AckSettings, AckStatus } from "./copies";
import type { WallClock } from "./hlc";
import type { Persistence } from "./persistence/types";
import type { ClusterStore, TableOptions } from "./store";
import type { ClusterAtomics, TransportKind } from "./transport";

export type DiscoveryMode = "local" | "none" | "mdns";

export interface ClusterConfig {
  /** nodes join only their own cluster: part of the pre-shared key, topic and protocol names */
  clusterName: string;
  /** 32 bytes; the private network's pre-shared key is derived from it and the cluster name */
  clusterKey: Uint8Array;
  /** the node key lives in `dataDir/node-key`, so a restart keeps its peer id */
  dataDir: string;
  /** listen host, default 127.0.0.1 */
  host: string;
  /** 0 = ephemeral */
  port: number;
  /** static peers: multiaddrs (`/ip4/127.0.0.1/tcp/5000[/p2p/…]`) or `host:port` */
  peers: string[];
  /** a name whose A/AAAA records are peers, polled; `name` (peers listen on `port`) or `name:port` */
  dns?: string;
  discovery: DiscoveryMode;
  /** for "local": the host-local registry folder; default `os.tmpdir()/pwdless-gs-cluster/<clusterName>` */
  registryDir?: string;
  /** free metadata announced with the node (e.g. httpUrl), shown in peers' status */
  meta?: Record<string, string>;
  /** set: Redis mode (rows, fan-out, atomics and membership in Redis; no libp2p) */
  redis?: RedisSettings;
}

export interface RedisAddress {
  host: string;
  port: number;
}

interface RedisCommonSettings {
  /** a Redis command, and so a write's durability wait, fails after this long */
  timeoutMs: number;
  /**
   * Replicas that must confirm a write (`WAIT`) before it is acknowledged. "auto" (default):
   * 1 while every primary has an online replica, else 0, and a replica that does not confirm in
   * time is counted and logged; a number: exactly that many, and a 503 when they do not confirm.
   */
  waitReplicas?: "auto" | number;
  /** Sentinel and Cluster modes: the data nodes' ACL user and password (REDIS_URL carries its own) */
  username?: string;
  password?: string;
  tls?: boolean;
}

/** Where Redis is: one server (REDIS_URL), a primary found through Sentinel, or a Redis Cluster. */
export type RedisSettings =
  | (RedisCommonSettings & {
      mode?: "standalone";
      /** redis:// or rediss://, with password and database number if any */
      url: string;
    })
  | (RedisCommonSettings & {
      mode: "sentinel";
      sentinels: RedisAddress[];
      /** the monitored primary's name (`sentinel monitor <name> …`) */
      sentinelName: string;
      /** the sentinels' own password, if they have one */
      sentinelPassword?: string;
      database?: number;
    })
  | (RedisCommonSettings & {
      mode: "cluster";
      /** some of the Cluster's nodes; the rest is discovered */
      nodes: RedisAddress[];
    });

export interface Logger {
  info(msg: string, fields?: object): void;
  warn(msg: string, fields?: object): void;
  error(msg: string, fields?: object): void;
}

/** Intervals of the node's background work; tests shorten them. */
export interface ClusterTimings {
  /** redial loop tick */
  redialTickMs: number;
  /** first and largest redial backoff */
  redialMinBackoffMs: number;
  redialMaxBackoffMs: number;
  /** local registry: scan and heartbeat */
  registryScanMs: number;
  registryHeartbeatMs: number;
  /** registry entries older than this are stale */
  registryStaleMs: number;
  dnsPollMs: number;
  /** periodic catch-up with one random peer */
  syncIntervalMs: number;
  /** membership announcements */
  announceIntervalMs: number;
  /** gossip-learned members not seen for this long are forgotten */
  memberTtlMs: number;
  /** liveness: heartbeat period, and the silence after which a peer is marked down */
  heartbeatMs: number;
  downAfterMs: number;
  tombstoneCollectMs: number;
  /**
   * a node that has found no peer to catch up from (configured, discovered or connected) this
   * long after start is ready alone
   */
  discoveryWindowMs: number;
  /** a node that knows of peers but has not caught up from any this long after start is ready anyway */
  peerWaitMs: number;
}

/** Intervals of a Redis-mode node's background work; tests shorten them. */
export interface RedisTimings {
  /** heartbeat: health, members, bucket state, topology; a member entry lives 3 heartbeats */
  heartbeatMs: number;
  /** first and largest reconnect backoff */
  reconnectMinMs: number;
  reconnectMaxMs: number;
  /** rows per SCAN step while loading */
  scanCount: number;
  tombstoneCollectMs: number;
  /** how long start() waits for a Redis that lost its data to be re-seeded before it returns (not ready) */
  startWaitMs: number;
}

export interface StartClusterOptions {
  clock?: WallClock;
  /**
   * Tables opened (with their merge rule and schema) before the node connects to anyone, so the
   * first records from peers already merge by the right rule. A first-writer-wins table must be
   * declared here or opened before any peer's record for it arrives.
   */
  tables?: Record<string, TableOptions<unknown>>;
  tombstoneTtlMs?: number;
  maxClockSkewMs?: number;
  timings?: Partial<ClusterTimings>;
  /** Redis mode's intervals */
  redisTimings?: Partial<RedisTimings>;
  /** keeps the tables across restarts (e.g. `filePersistence`); loaded before the node connects */
  persistence?: Persistence;
  /** gossip mode: how many copies (this node's included) an answer that reports a write waits for */
  acks?: Partial<AckSettings>;
}

export interface PeerStatus {
  id: string;
  connected: boolean;
  addresses: string[];
  pingMs: number | null;
  meta: Record<string, string>;
  /**
   * gossip mode: connected and answering heartbeats (false within ~2 s of a peer dying or
   * freezing, while its connection may still look open)
   */
  up?: boolean;
  /** gossip mode: ms since the peer was last heard from, while connected */
  silentMs?: number | null;
}

export interface ClusterCounters {
  messagesIn: number;
  messagesOut: number;
  rejected: Record<string, number>;
  catchUps: number;
  catchUpFailures: number;
  recordsPulled: number;
  tombstonesCollected: number;
}

/** Redis mode's connection, as /cluster shows it (the URL without its password). */
export interface RedisStatus {
  /** where Redis is (a URL without its password, or Sentinel / Cluster seed addresses) */
  url: string;
  keyPrefix: string;
  connection: "connected" | "reconnecting" | "connecting" | "stopped";
  /** the last PING's round trip (the slowest primary's) */
  latencyMs: number | null;
  lastLoadAt: number | null;
  reconnects: number;
  /** local writes Redis has not acknowledged yet (retried on reconnect) */
  unacknowledged: number;
  /** standalone, Sentinel or Cluster; the primaries and their replicas as they last reported */
  topology: {
    kind: "standalone" | "sentinel" | "cluster";
    sentinelName?: string;
    primaries: Array<{
      address: string;
      replicas: Array<{ address: string; state: string; lagSeconds: number | null }>;
    }>;
  };
  /** `WAIT` per write: the setting, the replicas asked for now, confirmations that fell short */
  waitReplicas: { setting: "auto" | number; effective: number; shortfalls: number };
  /** re-seeding after Redis lost its data: running now, how many so far, the last one's end */
  reseeds: { running: boolean; count: number; lastAt: number | null; rows: number };
  /** the last time every Redis check of a heartbeat answered in time */
  lastHealthyAt: number | null;
}

export interface ClusterStatus {
  mode: TransportKind;
  redis?: RedisStatus;
  nodeId: string;
  clusterName: string;
  ready: boolean;
  /**
   * why it is ready: "caught-up" (from a peer), "alone" (nobody to catch up from), "peer-wait-timeout"
   * (peers known, none caught up from in time), "redis" (loaded from Redis); null while not ready
   */
  readyReason: "caught-up" | "alone" | "peer-wait-timeout" | "redis" | null;
  addresses: string[];
  meta: Record<string, string>;
  peers: PeerStatus[];
  meshSize: number;
  tables: Record<string, number>;
  lastCatchUpAt: number | null;
  counters: ClusterCounters;
  /** now − record stamp for records applied from gossip over the last minute */
  replicationLagMs: { samples: number; p50: number | null; max: number | null };
  /** inbound cluster connections refused before their handshake, by reason */
  inboundRefused: Record<string, number>;
  /** gossip mode: handshakes let through and in progress, members' pool and strangers' pool */
  inbound?: { admitted: { member: number; unknown: number }; pending: { member: number; unknown: number } };
  /** gossip mode: replicated acknowledgements (ACK_COPIES) */
  acks?: AckStatus;
  /** gossip mode: peers marked down (silent or closed) and back up, since start */
  liveness?: { heartbeatMs: number; downAfterMs: number; down: number; up: number };
}

export type RequestHandler = (body: unknown, fromPeerId: string) => Promise<unknown>;

export interface Cluster {
  /** the libp2p peer id; also the store's node id */
  readonly nodeId: string;
  readonly store: ClusterStore;
  /**
   * true after the first successful catch-up with a peer; also when no peer is configured,
   * discovered or connected `discoveryWindowMs` after start, or none was caught up from within
   * `peerWaitMs` (gossip); Redis mode: loaded from Redis and connected
   */
  isReady(): boolean;
  status(): ClusterStatus;
  /** request/response to one peer; rejects with a ClusterRequestError ("unreachable" | "timeout" | "remote-error") */
  request(peerId: string, method: string, body: unknown, timeoutMs?: number): Promise<unknown>;
  handle(method: string, handler: RequestHandler): void;
  /** single use and rate limits; `atomics.scope` says whether the answer is cluster-wide */
  readonly atomics: ClusterAtomics;
  /**
   * Resolves once every write this node has applied so far is durable (this node's file; Redis in
   * Redis mode). A response that reports a write awaits it. Rejects with a ClusterUnavailableError
   * when the writes cannot be made durable (disk full, Redis unreachable).
   */
  durable(): Promise<void>;
  stop(): Promise<void>;
}
