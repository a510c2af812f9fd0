// Replicated acknowledgements and liveness between real in-process libp2p nodes (no persistence:
// a peer's "commit" is its store): what a node may say once `durable()` resolves, and how fast it
// sees a peer go.
import { generateKeyPair } from "@libp2p/crypto/keys";
import { multiaddr } from "@multiformats/multiaddr";
import { afterEach, describe, expect, it } from "vitest";
import { createClusterLibp2p } from "../../cluster/libp2p";
import { names } from "../../cluster/wire";
import { FAST, isMeshComplete, TestCluster, waitFor } from "./cluster-support";

let world: TestCluster;
afterEach(async () => {
  await world.cleanup();
});

describe("replicated acknowledgements between nodes", () => {
  it("resolve a write's wait only once a peer holds it", async () => {
    world = new TestCluster();
    const a = await world.start();
    const b = await world.start();
    await waitFor(() => isMeshComplete([a, b]), "two nodes connected", 10_000);
    await waitFor(() => a.status().acks?.able === 1, "A counts B as able to hold copies", 10_000);
    const sessions = a.store.table<{ n: number }>("sessions");
    const mirror = b.store.table<{ n: number }>("sessions");
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 100; i++) sessions.set(`r${round}-${i}`, { n: i });
      await a.durable();
      // no waiting here: the answer may only be given when B already holds every row
      for (let i = 0; i < 100; i++) expect(mirror.get(`r${round}-${i}`)).toEqual({ n: i });
    }
    const acks = a.status().acks!;
    expect(acks.counters.copied).toBeGreaterThanOrEqual(5);
    expect(acks.counters).toMatchObject({ timedOut: 0, alone: 0, refused: 0 });
    expect(acks.buffered).toBe(0);
  });

  it("with ACK_COPIES=1 never waits for a peer", async () => {
    world = new TestCluster();
    const a = await world.start({}, undefined, { acks: { copies: 1 } });
    const b = await world.start();
    await waitFor(() => isMeshComplete([a, b]), "two nodes connected", 10_000);
    a.store.table<{ n: number }>("sessions").set("k", { n: 1 });
    await a.durable();
    expect(a.status().acks?.counters).toMatchObject({ copied: 0, alone: 0, timedOut: 0 });
  });

  it("sees a peer whose connection closes as down at once, and then answers alone", async () => {
    world = new TestCluster();
    const a = await world.start();
    const b = await world.start();
    await waitFor(() => isMeshComplete([a, b]), "two nodes connected", 10_000);
    await waitFor(() => a.status().peers.find((p) => p.id === b.nodeId)?.up === true, "B up on A", 5_000);
    await world.stop(b);
    await waitFor(() => a.status().peers.every((p) => p.up === false), "B down on A", 5_000);
    expect(a.status().liveness?.down).toBe(1);
    a.store.table<{ n: number }>("sessions").set("after", { n: 1 });
    await a.durable();
    expect(a.status().acks?.counters.alone).toBeGreaterThanOrEqual(1);
  });

  it("does not hold answers for, nor call down, a peer of an older version without copies or heartbeats", async () => {
    world = new TestCluster();
    const a = await world.start({ discovery: "none" });
    const legacy = await createClusterLibp2p({
      config: await world.config({ discovery: "none" }),
      privateKey: await generateKeyPair("Ed25519"),
      names: names(world.clusterName),
    });
    await legacy.start();
    try {
      await legacy.dial(multiaddr(a.status().addresses[0]!));
      await waitFor(() => a.status().peers.some((p) => p.connected), "the legacy peer connected", 5_000);
      // longer than the liveness limit: a peer that cannot echo is not a silent one
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      const peer = a.status().peers.find((p) => p.id === legacy.peerId.toString());
      expect(peer).toMatchObject({ connected: true, up: true });
      a.store.table<{ n: number }>("sessions").set("k", { n: 1 });
      await a.durable();
      // answered on its own copy at once, not past ACK_TIMEOUT_MS
      expect(a.status().acks?.counters).toMatchObject({ alone: 1, timedOut: 0 });
    } finally {
      await legacy.stop();
    }
  });
});

describe("liveness and readiness", () => {
  it("a node whose only peer stops answering is ready alone, though the peer is still connected", async () => {
    world = new TestCluster();
    // a peer with the key that takes heartbeats and never echoes them: a hung process
    const frozen = await createClusterLibp2p({
      config: await world.config({ discovery: "none" }),
      privateKey: await generateKeyPair("Ed25519"),
      names: names(world.clusterName),
    });
    await frozen.handle(names(world.clusterName).aliveProtocol, () => {}, { maxInboundStreams: 4 });
    await frozen.start();
    const startedAt = Date.now();
    // the peer is still "up" when the readiness check has run a few times, and goes down after
    const node = await world.start({ discovery: "none" }, { ...FAST, discoveryWindowMs: 2_000, downAfterMs: 5_000 });
    try {
      await frozen.dial(multiaddr(node.status().addresses[0]!));
      await waitFor(() => node.status().peers.some((p) => p.connected), "the frozen peer connected", 5_000);
      // past the discovery window, connected and (for now) answering: it waits to catch up from it
      await waitFor(() => Date.now() - startedAt > 3_000, "the readiness check to have run", 5_000);
      expect(node.status().peers.find((p) => p.id === frozen.peerId.toString())?.up).toBe(true);
      expect(node.isReady()).toBe(false);
      await waitFor(() => node.status().peers.some((p) => p.up === false), "the silent peer marked down", 10_000);
      await waitFor(() => node.isReady(), "ready alone once no peer answers", 5_000);
      expect(node.status()).toMatchObject({ readyReason: "alone" });
      expect(node.status().peers.find((p) => p.id === frozen.peerId.toString())?.connected).toBe(true);
    } finally {
      await frozen.stop();
    }
  });
});
