/**
 * The libp2p node of a cluster member: TCP on the configured host, the private network's
 * pre-shared key, noise, yamux, identify, ping and gossipsub with signed messages.
 */
import { isIP } from "node:net";
import { gossipsub, type GossipSub } from "@chainsafe/libp2p-gossipsub";
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { identify, type Identify } from "@libp2p/identify";
import type { Libp2p, PrivateKey } from "@libp2p/interface";
import { mdns } from "@libp2p/mdns";
import { ping, type Ping } from "@libp2p/ping";
import { preSharedKey } from "@libp2p/pnet";
import { tcp } from "@libp2p/tcp";
import { createLibp2p } from "libp2p";
import { derivePreSharedKey } from "./identity";
import type { InboundGate } from "./inbound-gate";
import type { ClusterConfig } from "./types";
import { MAX_GOSSIP_BYTES, type WireNames } from "./wire";

export type ClusterLibp2p = Libp2p<{ identify: Identify; ping: Ping; pubsub: GossipSub }>;

export function listenAddress(host: string, port: number): string {
  const family = isIP(host);
  if (family === 0) throw new Error(`cluster host must be an IP address, got "${host}"`);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid cluster port ${port}`);
  return family === 6 ? `/ip6/${host}/tcp/${port}` : `/ip4/${host}/tcp/${port}`;
}

/**
 * Gossipsub's fast message id: a 53-bit hash (cyrb53 mixing) of publisher, sequence number and
 * payload, so a duplicate is dropped by a cache lookup instead of an Ed25519 verification.
 */
export function fastMessageId(message: { from?: Uint8Array; seqno?: Uint8Array; data?: Uint8Array }): string {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (const part of [message.from, message.seqno, message.data]) {
    if (!part) continue;
    for (let i = 0; i < part.length; i += 1) {
      h1 = Math.imul(h1 ^ part[i], 2654435761);
      h2 = Math.imul(h2 ^ part[i], 1597334677);
    }
    h1 = Math.imul(h1 ^ 0x100, 2654435761);
    h2 = Math.imul(h2 ^ 0x100, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(36);
}

export interface NodeOptions {
  config: ClusterConfig;
  privateKey: PrivateKey;
  names: WireNames;
  /** gossipsub heartbeat; short suits the small clusters this serves */
  heartbeatMs?: number;
  /** refuses inbound connections from non-members and too many pending ones per address */
  gate?: InboundGate;
}

/** A keyless peer must finish the pre-shared-key nonce exchange this fast, */
const PNET_HANDSHAKE_TIMEOUT_MS = 1_000;
/** and every inbound connection its whole upgrade (pnet, noise, yamux) within this. */
const INBOUND_UPGRADE_TIMEOUT_MS = 3_000;

const STREAM_WINDOW_BYTES = 512 * 1024;

/** Create (not start) the libp2p node. */
export async function createClusterLibp2p(options: NodeOptions): Promise<ClusterLibp2p> {
  const { config, privateKey, names } = options;
  const node = await createLibp2p({
    start: false,
    privateKey,
    addresses: { listen: [listenAddress(config.host, config.port)] },
    transports: [tcp()],
    connectionProtector: preSharedKey({
      psk: derivePreSharedKey(config.clusterKey, config.clusterName),
      timeout: PNET_HANDSHAKE_TIMEOUT_MS,
    }),
    connectionGater: options.gate?.gater(),
    connectionEncrypters: [noise()],
    // a stream's window bounds what a peer sends ahead of what we read: yamux grows it up to
    // 16 MiB when its measured round trip is long (a loaded host), and every byte that arrives
    // is decrypted (pnet, noise) at once, in the turn that reads it; a catch-up at that window
    // decrypted megabytes per turn (40 ms) on both ends. 512 KiB keeps a turn's share a few ms.
    streamMuxers: [yamux({ maxStreamWindowSize: STREAM_WINDOW_BYTES })],
    peerDiscovery: config.discovery === "mdns" ? [mdns({ interval: 10_000 })] : [],
    connectionManager: {
      dialTimeout: 5_000,
      // every member of a local cluster connects from the same host
      inboundConnectionThreshold: 100,
      // the inbound gate shares out handshake slots (members' and strangers' pools): libp2p's own
      // global limit stays above the gate's so it never refuses a member the gate would let in
      maxIncomingPendingConnections: 256,
      // libp2p's default (10 s) lets stalled keyless connections hold those 64 slots for long
      inboundUpgradeTimeout: INBOUND_UPGRADE_TIMEOUT_MS,
    },
    // a catch-up slices its work, but a loaded two-core host can still delay a pong past the
    // default 5 s floor: that must not abort a connection in the middle of a snapshot
    connectionMonitor: { pingTimeout: { minTimeout: 20_000 } },
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub({
        globalSignaturePolicy: "StrictSign",
        allowPublishToZeroTopicPeers: true,
        emitSelf: false,
        heartbeatInterval: options.heartbeatMs ?? 500,
        allowedTopics: [names.recordsTopic, names.membersTopic],
        // oversize messages still reach the validator, which rejects and counts them
        maxInboundDataLength: 4 * MAX_GOSSIP_BYTES,
        D: 6,
        Dlo: 4,
        Dhi: 12,
        fallbackToFloodsub: false,
        // duplicates (most arrivals at 5 nodes) are recognised by a hash before their signature is checked
        fastMsgIdFn: fastMessageId,
      }),
    },
  });
  // gossipsub's factory is typed as the generic PubSub; the service is its GossipSub class
  return node as unknown as ClusterLibp2p;
}
