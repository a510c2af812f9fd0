/**
 * A cluster member: the libp2p node, its discovery sources, live replication, catch-up and
 * request/response, wired together around one ClusterStore.
 */
import type { GossipSub } from "@chainsafe/libp2p-gossipsub";
import type { PeerId, PeerInfo, Stream } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import { Announcements } from "./announcements";
import { BackgroundTasks, collectTombstones } from "./background";
import { Copies, DEFAULT_ACK_SETTINGS } from "./copies";
import { CopyStreams } from "./copy-streams";
import { resolvePeerNames, parseDnsName, systemResolver } from "./discovery/dns";
import { defaultRegistryDir, LocalRegistry } from "./discovery/local";
import { parseStaticPeers, type HostPort } from "./discovery/static";
import { CLUSTER_NAME, loadOrCreateNodeKey } from "./identity";
import { InboundGate, multiaddrIp } from "./inbound-gate";
import { createClusterLibp2p, type ClusterLibp2p } from "./libp2p";
import { Liveness, type DownReason } from "./liveness";
import { Members } from "./members";
import { LagTracker, newCounters, Replication } from "./replication";
import { ClusterRequestError, DEFAULT_REQUEST_TIMEOUT_MS, RequestHandlers, sendRequest } from "./rpc";
import { ClusterStore, DEFAULT_MAX_CLOCK_SKEW_MS, DEFAULT_TOMBSTONE_TTL_MS } from "./store";
import { startRedisCluster } from "./redis/node";
import type { Persistence, RestoreResult } from "./persistence/types";
import { pullSync, serveSync } from "./sync";
import { LocalAtomics } from "./transport";
import type {
  Cluster,
  ClusterConfig,
  ClusterCounters,
  ClusterStatus,
  ClusterTimings,
  Logger,
  PeerStatus,
  RequestHandler,
  StartClusterOptions,
} from "./types";
import { names as wireNames, type WireNames } from "./wire";

export const DEFAULT_TIMINGS: ClusterTimings = {
  redialTickMs: 1_000,
  redialMinBackoffMs: 1_000,
  redialMaxBackoffMs: 30_000,
  registryScanMs: 1_000,
  registryHeartbeatMs: 5_000,
  registryStaleMs: 30_000,
  dnsPollMs: 5_000,
  syncIntervalMs: 15_000,
  announceIntervalMs: 5_000,
  memberTtlMs: 60_000,
  heartbeatMs: 250,
  downAfterMs: 1_500,
  tombstoneCollectMs: 10 * 60_000,
  discoveryWindowMs: 3_000,
  peerWaitMs: 30_000,
};

/**
 * A catch-up is abandoned when its peer sends or takes nothing for SYNC_IDLE_MS, and in any case
 * after SYNC_TIMEOUT_MS; a million users take longer than a fixed two minutes on a busy host, and
 * an abandoned pull resumes anyway.
 */
const SYNC_TIMEOUT_MS = 15 * 60_000;
const SYNC_IDLE_MS = 30_000;
const INBOUND_REQUEST_TIMEOUT_MS = 60_000;

function checkConfig(config: ClusterConfig): void {
  if (!CLUSTER_NAME.test(config.clusterName)) {
    throw new Error(`invalid cluster name "${config.clusterName}": letters, digits, . _ - (at most 64)`);
  }
  if (!(config.clusterKey instanceof Uint8Array) || config.clusterKey.byteLength < 32) {
    throw new Error("clusterKey must be 32 bytes");
  }
  if (!["local", "none", "mdns"].includes(config.discovery)) {
    throw new Error(`unknown cluster discovery "${String(config.discovery)}"`);
  }
}

/** Start a cluster member: resolves once it listens; peers are found in the background. */
export async function startCluster(
  config: ClusterConfig,
  log: Logger,
  options: StartClusterOptions = {},
): Promise<Cluster> {
  if (config.redis) return startRedisCluster(config, config.redis, log, options);
  checkConfig(config);
  const staticPeers = parseStaticPeers(config.peers);
  const dnsName = config.dns ? parseDnsName(config.dns, config.port) : undefined;
  const privateKey = await loadOrCreateNodeKey(config.dataDir);
  const names = wireNames(config.clusterName);
  // members listed by the operator: nobody else may even start a handshake
  const gate = new InboundGate();
  if (config.peers.length > 0 || config.dns) {
    gate.allowMembers(
      "static",
      staticPeers.addrs.flatMap((a) => multiaddrIp(a) ?? []),
    );
  }
  const libp2p = await createClusterLibp2p({ config, privateKey, names, gate });
  const nodeId = libp2p.peerId.toString();
  const store = new ClusterStore({
    nodeId,
    clock: options.clock,
    tombstoneTtlMs: options.tombstoneTtlMs,
    maxClockSkewMs: options.maxClockSkewMs,
  });
  for (const [name, tableOptions] of Object.entries(options.tables ?? {})) store.table(name, tableOptions);
  // the file is read back before libp2p starts: peers then only add what this node missed
  const persistence = options.persistence;
  const restore = persistence
    ? await persistence.start({ store, log, tombstoneTtlMs: options.tombstoneTtlMs ?? DEFAULT_TOMBSTONE_TTL_MS })
    : undefined;
  if (restore) log.info("cluster: tables restored from the file", { ...restore, tables: store.sizes() });
  const node = new ClusterNode({
    config,
    log,
    libp2p,
    store,
    names,
    timings: { ...DEFAULT_TIMINGS, ...options.timings },
    maxClockSkewMs: options.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS,
    staticAddrs: staticPeers.addrs,
    dnsNames: dnsName ? [...staticPeers.names, dnsName] : staticPeers.names,
    gate,
    persistence,
    restore,
    tombstoneTtlMs: options.tombstoneTtlMs ?? DEFAULT_TOMBSTONE_TTL_MS,
    acks: options.acks,
  });
  try {
    await node.start();
  } catch (error) {
    await node.stop().catch((stopError: unknown) => {
      log.error("cluster: cleanup after a failed start failed", { error: (stopError as Error).message });
    });
    throw error;
  }
  return node;
}

interface NodeParts {
  config: ClusterConfig;
  log: Logger;
  libp2p: ClusterLibp2p;
  store: ClusterStore;
  names: WireNames;
  timings: ClusterTimings;
  maxClockSkewMs: number;
  staticAddrs: string[];
  dnsNames: HostPort[];
  gate: InboundGate;
  persistence: Persistence | undefined;
  restore: RestoreResult | undefined;
  /** the tombstone horizon: the last contact is noted well within it */
  tombstoneTtlMs: number;
  acks: StartClusterOptions["acks"];
}

class ClusterNode implements Cluster {
  readonly nodeId: string;
  readonly store: ClusterStore;
  readonly atomics = new LocalAtomics(Date.now);
  private readonly libp2p: ClusterLibp2p;
  private readonly pubsub: GossipSub;
  private readonly log: Logger;
  private readonly timings: ClusterTimings;
  private readonly counters: ClusterCounters = newCounters();
  private readonly lag: LagTracker;
  private readonly members: Members;
  private readonly replication: Replication;
  private readonly announcements: Announcements;
  private readonly handlers: RequestHandlers;
  private readonly registry: LocalRegistry | undefined;
  private readonly peerIds = new Map<string, PeerId>();
  private readonly liveness: Liveness;
  private readonly copies: Copies;
  private readonly copyStreams: CopyStreams;
  private unsubscribeCopies: (() => void) | undefined;
  /** pulls run one at a time, from one peer: a joiner takes its snapshot once, not from everyone */
  private pulling: string | undefined;
  private readonly pullQueue = new Map<string, string>();
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly background: BackgroundTasks;
  private readonly lifetime = new AbortController();
  private ready = false;
  private readyReason: ClusterStatus["readyReason"] = null;
  private readonly startedAt = Date.now();
  private waitingLogged = false;
  private lastCatchUpAt: number | null = null;
  private stopping: Promise<void> | undefined;

  constructor(private readonly parts: NodeParts) {
    const { libp2p, store, log, timings, config, names } = parts;
    this.libp2p = libp2p;
    this.pubsub = libp2p.services.pubsub;
    this.store = store;
    this.nodeId = store.nodeId;
    this.log = log;
    this.timings = timings;
    this.background = new BackgroundTasks(log);
    this.lag = new LagTracker(() => store.clock.wallNow());
    this.handlers = new RequestHandlers(log);
    this.members = new Members({
      selfId: this.nodeId,
      isConnected: (peerId) => this.isConnected(peerId),
      ownAddresses: () => this.ownAddresses(),
      dial: async (addrs, signal) => (await libp2p.dial(addrs, { signal })).remotePeer.toString(),
      now: Date.now,
      log,
      minBackoffMs: timings.redialMinBackoffMs,
      maxBackoffMs: timings.redialMaxBackoffMs,
      memberTtlMs: timings.memberTtlMs,
    });
    this.replication = new Replication({
      pubsub: this.pubsub,
      topic: names.recordsTopic,
      store,
      log,
      counters: this.counters,
      lag: this.lag,
      maxClockSkewMs: parts.maxClockSkewMs,
    });
    this.announcements = new Announcements({
      pubsub: this.pubsub,
      topic: names.membersTopic,
      selfId: this.nodeId,
      members: this.members,
      counters: this.counters,
      log,
      ownAddresses: () => this.ownAddresses(),
      meta: config.meta ?? {},
      connectedPeers: () => this.connectedPeers(),
    });
    this.liveness = new Liveness(
      { intervalMs: timings.heartbeatMs, downAfterMs: timings.downAfterMs },
      {
        open: (peerId, signal) => libp2p.dialProtocol(this.peerId(peerId), names.aliveProtocol, { signal }),
        now: Date.now,
        changed: (peerId, up, reason, silentMs) => this.onLivenessChange(peerId, up, reason, silentMs),
      },
    );
    this.copies = new Copies(
      { ...DEFAULT_ACK_SETTINGS, ...parts.acks },
      { log, now: Date.now, onWrite: () => this.copyStreams.pumpSoon() },
    );
    this.copyStreams = new CopyStreams({
      copies: this.copies,
      store,
      log,
      counters: this.counters,
      lag: this.lag,
      maxClockSkewMs: parts.maxClockSkewMs,
      candidates: () => this.livePeers(),
      open: (peerId, signal) => libp2p.dialProtocol(this.peerId(peerId), names.copiesProtocol, { signal }),
      committed: () => (parts.persistence ? parts.persistence.durable() : Promise.resolve()),
      now: Date.now,
    });
    if (config.discovery === "local") {
      this.registry = new LocalRegistry({
        dir: config.registryDir ?? defaultRegistryDir(config.clusterName),
        clusterName: config.clusterName,
        peerId: this.nodeId,
        addrs: () => this.ownAddresses(),
        staleMs: timings.registryStaleMs,
        now: Date.now,
        log,
      });
    }
  }

  async start(): Promise<void> {
    const { libp2p, names } = this.parts;
    await libp2p.handle(names.syncProtocol, ({ stream }) => this.serveSync(stream), { maxInboundStreams: 16 });
    await libp2p.handle(
      names.rpcProtocol,
      ({ stream, connection }) => this.serveRequest(stream, connection.remotePeer.toString()),
      { maxInboundStreams: 256 },
    );
    await libp2p.handle(
      names.aliveProtocol,
      ({ stream, connection }) => void this.liveness.serve(stream, connection.remotePeer.toString()),
      { maxInboundStreams: 4 },
    );
    await libp2p.handle(
      names.copiesProtocol,
      ({ stream, connection }) => void this.copyStreams.serve(stream, connection.remotePeer.toString()),
      { maxInboundStreams: 4 },
    );
    this.unsubscribeCopies = this.copies.attach(this.store);
    libp2p.addEventListener("peer:connect", this.onPeerConnect);
    libp2p.addEventListener("peer:disconnect", this.onPeerDisconnect);
    libp2p.addEventListener("peer:discovery", this.onPeerDiscovery);
    this.pubsub.addEventListener("subscription-change", this.onSubscriptionChange);
    await libp2p.start();
    this.replication.start();
    this.announcements.start();
    this.members.replaceAddresses("static", this.parts.staticAddrs);
    const t = this.timings;
    this.background.every(t.redialTickMs, () => this.members.tick());
    this.background.every(t.announceIntervalMs, () => this.announcements.announce());
    this.background.every(t.syncIntervalMs, () => this.periodicCatchUp());
    this.liveness.start();
    // copy links that failed are retried; peers that changed state are matched again
    this.background.every(1_000, () => this.copyStreams.refresh());
    this.background.every(t.tombstoneCollectMs, () => collectTombstones(this.store, this.counters, this.log));
    if (this.parts.persistence) {
      const every = Math.max(250, Math.min(60_000, Math.floor(this.parts.tombstoneTtlMs / 4)));
      this.background.every(every, () => this.noteContact());
    }
    if (this.parts.dnsNames.length > 0) {
      this.background.every(t.dnsPollMs, () => this.pollDns());
      this.pollDns();
    }
    if (this.registry) {
      await this.registry.heartbeat();
      this.background.every(t.registryHeartbeatMs, () => this.registryHeartbeat());
      this.background.every(t.registryScanMs, () => this.scanRegistry());
      this.scanRegistry();
    }
    this.members.tick();
    // readiness without a catch-up: checked every second until the node is ready (see readyAlone)
    this.background.every(Math.min(1_000, t.discoveryWindowMs), () => this.readyAlone());
    this.log.info("cluster: node started", {
      nodeId: this.nodeId,
      clusterName: this.parts.config.clusterName,
      addresses: this.ownAddresses(),
      discovery: this.parts.config.discovery,
    });
  }

  isReady(): boolean {
    return this.ready;
  }

  /**
   * Note in the file that this node is in step with its cluster: ready, and connected to a peer
   * (or with no other member known: a single node). A node cut off from its members stops noting,
   * so after a restart past the tombstone horizon its file is refused (see staleFileProblem).
   */
  private noteContact(): void {
    if (!this.ready || this.stopping) return;
    const alone = this.members.knownPeerIds().filter((id) => id !== this.nodeId).length === 0;
    if (alone || this.connectedPeers().length > 0) this.parts.persistence?.noteContact(Date.now());
  }

  handle(method: string, handler: RequestHandler): void {
    this.handlers.register(method, handler);
  }

  /**
   * This node's commit and, with ACK_COPIES ≥ 2 and a peer answering, a peer's confirmation that
   * it committed the same writes (copies.ts). The copy target is taken now, with the commit's.
   */
  durable(): Promise<void> {
    const copied = this.copies.wait();
    const own = this.parts.persistence ? this.parts.persistence.durable() : Promise.resolve();
    return Promise.all([own, copied]).then(() => undefined);
  }

  /**
   * Ready without a catch-up, checked every second until ready. A node with nobody to catch up
   * from (no configured, discovered or connected peer once the discovery window has passed) serves
   * alone, on a first start as after a restart: a single-node deployment is ready within seconds.
   * A node that knows of a peer waits for its first catch-up, but not forever: when no catch-up
   * has started `peerWaitMs` after start (every known peer unreachable), it serves its own copy.
   */
  private readyAlone(): void {
    if (this.ready || this.stopping || this.pulling !== undefined) return;
    const elapsed = Date.now() - this.startedAt;
    const { discoveryWindowMs, peerWaitMs } = this.timings;
    if (elapsed < discoveryWindowMs) return;
    // the fresh view: a connected peer that stopped answering is no more use than an unreachable one
    const connected = this.livePeers().length;
    const known = this.members.targetCount();
    if (connected === 0 && known === 0) {
      this.ready = true;
      this.readyReason = "alone";
      // a node with no peer at all is its whole cluster: in step with it by definition
      this.noteContact();
      this.log.info("cluster: ready alone, no peer to catch up from", { discoveryWindowMs });
      return;
    }
    if (elapsed < peerWaitMs) {
      if (!this.waitingLogged) {
        this.waitingLogged = true;
        this.log.info("cluster: waiting for a first catch-up from a peer before reporting ready", {
          knownPeers: known,
          connectedPeers: connected,
          peerWaitMs,
        });
      }
      return;
    }
    this.ready = true;
    this.readyReason = "peer-wait-timeout";
    this.log.warn("cluster: ready without a catch-up: no peer could be caught up from in time", {
      knownPeers: known,
      connectedPeers: connected,
      peerWaitMs,
    });
  }

  async request(
    peerId: string,
    method: string,
    body: unknown,
    timeoutMs = DEFAULT_REQUEST_TIMEOUT_MS,
  ): Promise<unknown> {
    if (this.stopping) throw new ClusterRequestError("unreachable", "the cluster node is stopped");
    if (peerId === this.nodeId) return this.requestSelf(method, body, timeoutMs);
    // a peer connected but silent past the liveness limit is not waited for: the caller says so at once
    if (this.liveness.isDown(peerId)) {
      throw new ClusterRequestError("unreachable", "the peer is not answering (marked down)");
    }
    const protocol = this.parts.names.rpcProtocol;
    return sendRequest(
      (signal) => this.libp2p.dialProtocol(this.peerId(peerId), protocol, { signal }),
      method,
      body,
      timeoutMs,
    );
  }

  status(): ClusterStatus {
    const connected = new Set(this.connectedPeers());
    const ids = new Set([...connected, ...this.members.knownPeerIds()]);
    const peers: PeerStatus[] = [...ids].sort().map((id) => {
      const connections = connected.has(id) ? this.libp2p.getConnections(this.peerId(id)) : [];
      const addresses = this.members.addressesOf(id);
      const alive = connected.has(id) ? this.liveness.view(id) : undefined;
      return {
        id,
        connected: connected.has(id),
        addresses: addresses.length > 0 ? addresses : connections.map((c) => c.remoteAddr.toString()),
        pingMs: alive?.rttMs ?? connections.find((c) => c.rtt !== undefined)?.rtt ?? null,
        meta: { ...(this.members.announced.get(id)?.meta ?? {}) },
        up: alive?.up ?? false,
        silentMs: alive?.silentMs ?? null,
      };
    });
    return {
      mode: "gossip",
      nodeId: this.nodeId,
      clusterName: this.parts.config.clusterName,
      ready: this.ready,
      readyReason: this.readyReason,
      addresses: this.ownAddresses(),
      meta: { ...(this.parts.config.meta ?? {}) },
      peers,
      meshSize: this.pubsub.getMeshPeers(this.parts.names.recordsTopic).length,
      tables: this.store.sizes(),
      lastCatchUpAt: this.lastCatchUpAt,
      counters: { ...this.counters, rejected: { ...this.counters.rejected } },
      replicationLagMs: this.lag.summary(),
      inboundRefused: { ...this.parts.gate.refused },
      inbound: { admitted: { ...this.parts.gate.admitted }, pending: this.parts.gate.pending() },
      acks: this.copies.status(),
      liveness: {
        heartbeatMs: this.timings.heartbeatMs,
        downAfterMs: this.timings.downAfterMs,
        ...this.liveness.counters,
      },
    };
  }

  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    this.noteContact();
    this.lifetime.abort();
    this.background.stop();
    clearTimeout(this.retryTimer);
    this.members.stop();
    this.liveness.stop();
    this.copyStreams.stop();
    this.unsubscribeCopies?.();
    // answers still waiting for a copy are given: this node's own commit still decides them
    this.copies.stop();
    this.libp2p.removeEventListener("peer:connect", this.onPeerConnect);
    this.libp2p.removeEventListener("peer:disconnect", this.onPeerDisconnect);
    this.libp2p.removeEventListener("peer:discovery", this.onPeerDiscovery);
    this.pubsub.removeEventListener("subscription-change", this.onSubscriptionChange);
    if (this.libp2p.status === "started") {
      this.replication.stop();
      this.announcements.stop();
    }
    if (this.registry) {
      await this.registry.remove().catch((error: unknown) => {
        this.log.warn("cluster: cannot remove the registry entry", { error: (error as Error).message });
      });
    }
    await this.libp2p.stop();
    // after the transport: records that arrived until now are committed too
    await this.parts.persistence?.stop().catch((error: unknown) => {
      this.log.error("cluster: closing the tables file failed", { error: (error as Error).message });
    });
    this.log.info("cluster: node stopped", { nodeId: this.nodeId });
  }

  // --- catch-up ---

  private async catchUp(peerId: string, reason: string): Promise<void> {
    if (this.stopping) return;
    if (this.pulling !== undefined) {
      // the running pull brings the joiner most of what this one would; this one then costs a digest
      if (!this.pullQueue.has(peerId)) this.pullQueue.set(peerId, reason);
      return;
    }
    this.pulling = peerId;
    const started = Date.now();
    const result = { received: 0, applied: 0, rejected: 0, differingBuckets: 0 };
    try {
      const signal = AbortSignal.any([this.lifetime.signal, AbortSignal.timeout(SYNC_TIMEOUT_MS)]);
      const stream = await this.libp2p.dialProtocol(this.peerId(peerId), this.parts.names.syncProtocol, { signal });
      await pullSync(stream, { store: this.store, log: this.log, idleMs: SYNC_IDLE_MS }, signal, result);
      this.counters.catchUps += 1;
      this.lastCatchUpAt = Date.now();
      if (!this.ready) {
        this.ready = true;
        this.readyReason = "caught-up";
        this.noteContact();
        this.log.info("cluster: caught up, ready", { peer: peerId, records: result.applied, ms: Date.now() - started });
      } else if (result.applied > 0) {
        this.log.info("cluster: caught up", {
          peer: peerId,
          reason,
          records: result.applied,
          ms: Date.now() - started,
        });
      }
    } catch (error) {
      if (this.stopping) return;
      this.counters.catchUpFailures += 1;
      this.log.warn("cluster: catch-up failed", {
        peer: peerId,
        reason,
        applied: result.applied,
        error: (error as Error).message,
      });
      // what was applied stays; the next pull's digest skips it, so retry soon (with any peer)
      this.retrySoon();
    } finally {
      this.counters.recordsPulled += result.applied;
      this.pulling = undefined;
      this.nextPull();
    }
  }

  private nextPull(): void {
    if (this.stopping) return;
    for (const [peerId, reason] of this.pullQueue) {
      this.pullQueue.delete(peerId);
      if (!this.isConnected(peerId)) continue;
      void this.catchUp(peerId, reason);
      return;
    }
  }

  private retrySoon(): void {
    if (this.retryTimer || this.stopping) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      const peers = this.livePeers();
      if (peers.length > 0 && !this.stopping)
        void this.catchUp(peers[Math.floor(Math.random() * peers.length)], "retry");
    }, 1_000);
  }

  private periodicCatchUp(): void {
    const peers = this.livePeers();
    if (peers.length === 0) return;
    void this.catchUp(peers[Math.floor(Math.random() * peers.length)], "periodic");
  }

  private async serveSync(stream: Stream): Promise<void> {
    const signal = AbortSignal.any([this.lifetime.signal, AbortSignal.timeout(SYNC_TIMEOUT_MS)]);
    try {
      await serveSync(stream, { store: this.store, log: this.log, idleMs: SYNC_IDLE_MS }, signal);
    } catch (error) {
      if (!this.stopping) this.log.warn("cluster: serving a catch-up failed", { error: (error as Error).message });
    }
  }

  private async serveRequest(stream: Stream, from: string): Promise<void> {
    const signal = AbortSignal.any([this.lifetime.signal, AbortSignal.timeout(INBOUND_REQUEST_TIMEOUT_MS)]);
    try {
      await this.handlers.serve(stream, from, signal);
    } catch (error) {
      if (!this.stopping) this.log.warn("cluster: serving a request failed", { from, error: (error as Error).message });
    }
  }

  private async requestSelf(method: string, body: unknown, timeoutMs: number): Promise<unknown> {
    // the same JSON round trip a peer's request takes, so callers see the same values
    const copy: unknown = body === undefined ? undefined : JSON.parse(JSON.stringify(body));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new ClusterRequestError("timeout", `request ${method} timed out after ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      const response = await Promise.race([this.handlers.invoke(method, copy, this.nodeId), deadline]);
      if (!response.ok) throw new ClusterRequestError("remote-error", response.error.message);
      return response.body === undefined ? undefined : JSON.parse(JSON.stringify(response.body));
    } finally {
      clearTimeout(timer);
    }
  }

  // --- peers ---

  private readonly onPeerConnect = (event: CustomEvent<PeerId>): void => {
    const peerId = event.detail.toString();
    // it holds the key: the address it came from keeps reserved handshake slots from now on
    for (const connection of this.libp2p.getConnections(event.detail)) {
      const ip = multiaddrIp(connection.remoteAddr.toString());
      if (ip) this.parts.gate.authenticated(ip);
    }
    this.liveness.watch(peerId);
    this.copyStreams.refresh();
    this.members.connected(peerId);
    this.announcements.announceSoon();
    void this.catchUp(peerId, "connect");
  };

  private readonly onPeerDisconnect = (event: CustomEvent<PeerId>): void => {
    const peerId = event.detail.toString();
    this.liveness.forget(peerId);
    this.copyStreams.forget(peerId);
    this.members.disconnected(peerId);
  };

  /**
   * A peer went down (its connection closed, or it stopped answering) or came back. Answers
   * waiting for copies are matched to the peers left; the survivors compare their tables at once,
   * so a write the lost peer copied to only one of them reaches the others without waiting for the
   * periodic catch-up; a restarted node left with no answering peer may be ready alone.
   */
  private onLivenessChange(peerId: string, up: boolean, reason: DownReason | "answered", silentMs: number): void {
    if (this.stopping) return;
    this.copyStreams.refresh();
    if (up) {
      this.log.info("cluster: peer answers again", { peer: peerId, silentMs });
      return;
    }
    // a closed connection is news; a silent one may be a peer busy for a moment (it stays connected)
    this.log[reason === "silent" ? "warn" : "info"]("cluster: peer down", { peer: peerId, reason, silentMs });
    const survivors = this.livePeers();
    if (survivors.length > 0) void this.catchUp(survivors[Math.floor(Math.random() * survivors.length)]!, "peer-lost");
    // readiness is checked every second anyway; at once here, as the view just changed
    this.readyAlone();
  }

  private readonly onSubscriptionChange = (
    event: CustomEvent<{ peerId: PeerId; subscriptions: Array<{ topic: string; subscribe: boolean }> }>,
  ): void => {
    const { peerId, subscriptions } = event.detail;
    // from now on its writes reach us by gossip; pull what it wrote before that
    if (subscriptions.some((s) => s.subscribe && s.topic === this.parts.names.recordsTopic)) {
      void this.catchUp(peerId.toString(), "subscribed");
    }
  };

  private readonly onPeerDiscovery = (event: CustomEvent<PeerInfo>): void => {
    const { id, multiaddrs } = event.detail;
    this.members.learn(
      "mdns",
      id.toString(),
      multiaddrs.map((m) => m.toString()),
    );
  };

  private connectedPeers(): string[] {
    return this.libp2p.getPeers().map((p) => p.toString());
  }

  /** Connected peers that answer heartbeats: the fresh view routing and readiness act on. */
  private livePeers(): string[] {
    return this.connectedPeers().filter((peerId) => this.liveness.isUp(peerId));
  }

  private isConnected(peerId: string): boolean {
    try {
      return this.libp2p.getConnections(this.peerId(peerId)).length > 0;
    } catch {
      return false;
    }
  }

  private peerId(id: string): PeerId {
    let peerId = this.peerIds.get(id);
    if (!peerId) {
      peerId = peerIdFromString(id);
      if (this.peerIds.size > 10_000) this.peerIds.clear();
      this.peerIds.set(id, peerId);
    }
    return peerId;
  }

  private ownAddresses(): string[] {
    return this.libp2p.getMultiaddrs().map((m) => m.toString());
  }

  // --- discovery ---

  private registryHeartbeat(): void {
    this.registry?.heartbeat().catch((error: unknown) => {
      this.log.warn("cluster: registry heartbeat failed", { error: (error as Error).message });
    });
  }

  private scanning = false;
  private scanRegistry(): void {
    if (!this.registry || this.scanning) return;
    this.scanning = true;
    this.registry
      .scan()
      .then((entries) => {
        if (this.stopping) return;
        this.members.replacePeers(
          "local",
          entries.map((e) => ({ peerId: e.peerId, addrs: e.addrs })),
        );
        // registry members keep reserved handshake slots on the cluster port
        this.parts.gate.allowMembers(
          "local",
          entries.flatMap((e) => e.addrs.flatMap((a) => multiaddrIp(a) ?? [])),
        );
        this.members.tick();
      })
      .catch((error: unknown) => {
        this.log.warn("cluster: registry scan failed", { error: (error as Error).message });
      })
      .finally(() => {
        this.scanning = false;
      });
  }

  private polling = false;
  private pollDns(): void {
    if (this.polling) return;
    this.polling = true;
    resolvePeerNames(this.parts.dnsNames, systemResolver, (name, error) => {
      this.log.warn("cluster: DNS lookup failed", { name, error: error.message });
    })
      .then((addrs) => {
        if (this.stopping) return;
        // a failed lookup keeps the last known members rather than shutting them all out
        if (addrs.length > 0)
          this.parts.gate.allowMembers(
            "dns",
            addrs.flatMap((a) => multiaddrIp(a) ?? []),
          );
        this.members.replaceAddresses("dns", addrs);
        this.members.tick();
      })
      .finally(() => {
        this.polling = false;
      });
  }
}
