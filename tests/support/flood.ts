/**
 * A keyless flood of the cluster port, and members with the key, for the flood test and
 * `npm run bench:faults`: real TCP sockets from chosen loopback source addresses (any 127/8
 * address is this machine's on Linux) and real libp2p nodes holding the pre-shared key.
 */
import { randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { generateKeyPair } from "@libp2p/crypto/keys";
import { preSharedKey } from "@libp2p/pnet";
import { tcp, type TCPOptions } from "@libp2p/tcp";
import { createLibp2p, type Libp2p } from "libp2p";
import { derivePreSharedKey } from "../../cluster/identity";
import { createClusterLibp2p, type ClusterLibp2p } from "../../cluster/libp2p";
import { names } from "../../cluster/wire";
import { clusterKeyFor, deriveKeyRing } from "../../server/keys";
import { tempDir } from "./node";

export const FLOOD_SIZE = 200;
const FLOOD_MAX_CONNECTIONS = 3_000;
const FLOOD_MAX_MS = 30_000;
/** the attacker's address: any 127/8 address is this machine's on Linux */
const ATTACKER = "127.0.0.2";
/** the flood: ten source addresses, 64 connections open at a time, 24 bytes each */
const ATTACKERS = Array.from({ length: 10 }, (_, i) => `127.0.0.${20 + i}`);

export interface Flood {
  opened: () => number;
  open: () => number;
  /** still opening connections (neither stopped nor past its bounds in count and time) */
  running: () => boolean;
  stop: () => void;
}

export interface FloodShape {
  size: number;
  /** source address of connection i */
  from: (i: number) => string;
  /** bytes connection i writes before it stalls */
  bytes: (i: number) => number;
  /** how soon a closed connection comes back (default 10 ms) */
  reconnectMs?: number;
}

export const ONE_ADDRESS: FloodShape = { size: FLOOD_SIZE, from: () => ATTACKER, bytes: (i) => (i % 2 === 0 ? 8 : 40) };
/**
 * One address whose connections are refused at once (a non-member when peers are listed): each
 * slot comes back after a second, so the flood lasts its whole time bound instead of spending its
 * connection budget in the first few hundred milliseconds on a fast machine.
 */
export const ONE_ADDRESS_REFUSED: FloodShape = { ...ONE_ADDRESS, reconnectMs: 1_000 };
export const TEN_ADDRESSES: FloodShape = { size: 64, from: (i) => ATTACKERS[i % ATTACKERS.length]!, bytes: () => 24 };

/** Keep `shape.size` connections open that write a few random bytes and stall. */
export function flood(port: number, shape: FloodShape = ONE_ADDRESS): Flood {
  const sockets = new Set<Socket>();
  let opened = 0;
  let stopped = false;
  const started = Date.now();
  const one = (i: number) => {
    if (stopped || opened >= FLOOD_MAX_CONNECTIONS || Date.now() - started > FLOOD_MAX_MS) return;
    opened += 1;
    const socket = connect({ host: "127.0.0.1", port, localAddress: shape.from(i) });
    sockets.add(socket);
    socket.on("connect", () => socket.write(randomBytes(shape.bytes(i))));
    socket.on("error", () => {});
    socket.on("close", () => {
      sockets.delete(socket);
      // the attacker comes straight back, to keep the slots busy
      setTimeout(() => one(i), shape.reconnectMs ?? 10);
    });
  };
  for (let i = 0; i < shape.size; i++) one(i);
  return {
    opened: () => opened,
    open: () => [...sockets].filter((s) => !s.connecting && !s.destroyed).length,
    running: () => !stopped && opened < FLOOD_MAX_CONNECTIONS && Date.now() - started <= FLOOD_MAX_MS,
    stop: () => {
      stopped = true;
      for (const s of sockets) s.destroy();
    },
  };
}

export async function keyedMember(secret: string, clusterName: string): Promise<ClusterLibp2p> {
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

/**
 * A member with the key dialling from `from` (a real libp2p node with the same pre-shared key,
 * noise and yamux; its TCP dials bound to that source address).
 */
export async function memberFrom(from: string, secret: string, clusterName: string): Promise<Libp2p> {
  const member = await createLibp2p({
    privateKey: await generateKeyPair("Ed25519"),
    // Node's net.connect takes localAddress; @libp2p/tcp passes dialOpts through to it
    transports: [tcp({ dialOpts: { localAddress: from } as TCPOptions["dialOpts"] })],
    connectionProtector: preSharedKey({
      psk: derivePreSharedKey(clusterKeyFor(deriveKeyRing(secret, []), undefined), clusterName),
    }),
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
  });
  await member.start();
  return member;
}
