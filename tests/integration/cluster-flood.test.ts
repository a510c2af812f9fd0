/**
 * The cluster port under a flood of keyless connections: 200 stalled TCP connections (kept open,
 * reopened when closed, bounded in count and time) from another loopback address, while a member
 * holding the key joins.
 */
import { randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";
import { generateKeyPair } from "@libp2p/crypto/keys";
import { multiaddr } from "@multiformats/multiaddr";
import { afterAll, describe, expect, it } from "vitest";
import { createClusterLibp2p, type ClusterLibp2p } from "../../cluster/libp2p";
import { names } from "../../cluster/wire";
import { clusterKeyFor, deriveKeyRing } from "../../server/keys";
import { freePort } from "../support/ports";
import { startNode, stopAllNodes, tempDir, testSecret, uniqueName, type NodeProcess } from "../support/node";
import { waitFor } from "../support/wait";

afterAll(stopAllNodes);

const FLOOD_SIZE = 200;
const FLOOD_MAX_CONNECTIONS = 3_000;
const FLOOD_MAX_MS = 20_000;
/** the attacker's address: any 127/8 address is this machine's on Linux */
const ATTACKER = "127.0.0.2";

interface Flood {
  opened: () => number;
  open: () => number;
  stop: () => void;
}

/** Keep FLOOD_SIZE connections open that write a few random bytes (some past pnet's nonce) and stall. */
function flood(port: number): Flood {
  const sockets = new Set<Socket>();
  let opened = 0;
  let stopped = false;
  const started = Date.now();
  const one = (i: number) => {
    if (stopped || opened >= FLOOD_MAX_CONNECTIONS || Date.now() - started > FLOOD_MAX_MS) return;
    opened += 1;
    const socket = connect({ host: "127.0.0.1", port, localAddress: ATTACKER });
    sockets.add(socket);
    socket.on("connect", () => socket.write(randomBytes(i % 2 === 0 ? 8 : 40)));
    socket.on("error", () => {});
    socket.on("close", () => {
      sockets.delete(socket);
      // the attacker comes straight back, to keep the slots busy
      setTimeout(() => one(i), 10);
    });
  };
  for (let i = 0; i < FLOOD_SIZE; i++) one(i);
  return {
    opened: () => opened,
    open: () => [...sockets].filter((s) => !s.connecting && !s.destroyed).length,
    stop: () => {
      stopped = true;
      for (const s of sockets) s.destroy();
    },
  };
}

async function keyedMember(secret: string, clusterName: string): Promise<ClusterLibp2p> {
  const member = await createClusterLibp2p({
    config: {
      clusterName,
      clusterKey: clusterKeyFor(deriveKeyRing(secret, []), undefined),
      dataDir: tempDir("member"),
      host: "127.0.0.1",
      port: 0,
      peers: [],
      discovery: "none",
    },
    privateKey: await generateKeyPair("Ed25519"),
    names: names(clusterName),
  });
  await member.start();
  return member;
}

interface FloodStatus {
  peers: { id: string; connected: boolean }[];
  inboundRefused: Record<string, number>;
}

const clusterStatus = async (node: NodeProcess) => (await (await node.fetch("/cluster.json")).json()) as FloodStatus;

/** Dial the node while the flood is open; the dial must finish within the 2 s. */
async function joinDuringFlood(node: NodeProcess, member: ClusterLibp2p, clusterPort: number, attack: Flood) {
  await waitFor("the flood to be open", () => attack.open() >= 1 && attack.opened() >= FLOOD_SIZE);
  const started = performance.now();
  await member.dial(multiaddr(`/ip4/127.0.0.1/tcp/${clusterPort}`), { signal: AbortSignal.timeout(2_000) });
  const joinedMs = performance.now() - started;
  const memberId = member.peerId.toString();
  await waitFor("the node to list the member as connected", async () =>
    (await clusterStatus(node)).peers.some((p) => p.id === memberId && p.connected),
  );
  return joinedMs;
}

describe("the cluster port under a keyless flood", () => {
  it("lets a member with the key join within 2 s while 200 stalled connections keep coming from one address", async () => {
    const secret = testSecret();
    const clusterName = uniqueName("flood");
    const clusterPort = await freePort();
    const node = await startNode({
      env: { SECRET_KEY_BASE: secret, CLUSTER_NAME: clusterName, CLUSTER_PORT: String(clusterPort) },
    });
    // the anchor: the same join with no flood, measured in the same run
    const calm = await keyedMember(secret, clusterName);
    const calmStarted = performance.now();
    await calm.dial(multiaddr(`/ip4/127.0.0.1/tcp/${clusterPort}`), { signal: AbortSignal.timeout(10_000) });
    const calmMs = performance.now() - calmStarted;
    await calm.stop();
    const member = await keyedMember(secret, clusterName);
    const attack = flood(clusterPort);
    try {
      const joinedMs = await joinDuringFlood(node, member, clusterPort, attack);
      console.info(`cluster flood (open port): join without a flood ${calmMs.toFixed(0)} ms`);
      console.info(
        `cluster flood (open port): member joined in ${joinedMs.toFixed(0)} ms with ${attack.open()} flood sockets open, ${attack.opened()} opened so far`,
      );
      expect(attack.open()).toBeGreaterThan(0);
      const refused = (await clusterStatus(node)).inboundRefused;
      expect(refused["pending-per-address"]).toBeGreaterThan(0);
      expect((await node.fetch("/healthz")).status).toBe(200);
    } finally {
      attack.stop();
      await member.stop();
    }
  });

  it("refuses every connection from a non-member address at once when members come from CLUSTER_PEERS", async () => {
    const secret = testSecret();
    const clusterName = uniqueName("flood");
    const clusterPort = await freePort();
    const node = await startNode({
      env: {
        SECRET_KEY_BASE: secret,
        CLUSTER_NAME: clusterName,
        CLUSTER_PORT: String(clusterPort),
        // the member's address: loopback's first; the attacker uses another one
        CLUSTER_PEERS: `127.0.0.1:${await freePort()}`,
      },
    });
    const member = await keyedMember(secret, clusterName);
    const attack = flood(clusterPort);
    try {
      await waitFor("200 flood connections refused before any handshake", async () => {
        const refused = (await clusterStatus(node)).inboundRefused;
        return (refused["not-a-member"] ?? 0) >= FLOOD_SIZE;
      });
      const joinedMs = await joinDuringFlood(node, member, clusterPort, attack);
      console.info(
        `cluster flood (CLUSTER_PEERS): member joined in ${joinedMs.toFixed(0)} ms, ${attack.opened()} flood connections opened`,
      );
      const refused = (await clusterStatus(node)).inboundRefused;
      expect(refused["pending-per-address"]).toBe(0);
    } finally {
      attack.stop();
      await member.stop();
    }
  });
});
