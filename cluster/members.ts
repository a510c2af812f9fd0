/**
 * Who this node should be connected to, from every discovery source, and the redial loop that
 * keeps it connected to them: libp2p dials a discovered peer only once, a cluster wants its
 * members connected for as long as they live.
 */
import { peerIdFromString } from "@libp2p/peer-id";
import { multiaddr, type Multiaddr } from "@multiformats/multiaddr";
import type { Logger } from "./types";

/** Where a member came from: a peer id source, or an address list (static peers, DNS). */
export type PeerSource = "local" | "gossip" | "mdns";
export type AddressSource = "static" | "dns";

export interface MembersDeps {
  selfId: string;
  isConnected(peerId: string): boolean;
  /** our own listen addresses, so a static list naming this node is not dialled */
  ownAddresses(): string[];
  /** dial; resolves to the remote peer id */
  dial(addrs: Multiaddr[], signal: AbortSignal): Promise<string>;
  now(): number;
  log: Logger;
  minBackoffMs: number;
  maxBackoffMs: number;
  memberTtlMs: number;
  maxParallelDials?: number;
  dialTimeoutMs?: number;
}

interface DialState {
  backoffMs: number;
  nextDialAt: number;
  dialing: boolean;
  failures: number;
}

interface PeerTarget {
  addrs: string[];
  sources: Map<PeerSource, number>;
}

interface AddressTarget {
  sources: Set<AddressSource>;
  /** learned on the first successful dial */
  peerId?: string;
}

export interface AnnouncedPeer {
  addrs: string[];
  meta: Record<string, string>;
  at: number;
}

/** Only TCP addresses are dialled; anything else in an announcement is dropped. */
export function dialableAddress(text: string): Multiaddr | undefined {
  try {
    const ma = multiaddr(text);
    const protos = ma.protoNames();
    if (!protos.includes("tcp")) return undefined;
    if (!protos.some((p) => p === "ip4" || p === "ip6" || p === "dns4" || p === "dns6")) return undefined;
    if (protos.includes("p2p-circuit")) return undefined;
    return ma;
  } catch {
    return undefined;
  }
}

function validPeerId(text: string): boolean {
  try {
    peerIdFromString(text);
    return true;
  } catch {
    return false;
  }
}

function withoutPeerId(text: string): string {
  return text.replace(/\/p2p\/[^/]+$/, "");
}

export class Members {
  private readonly peers = new Map<string, PeerTarget>();
  private readonly addresses = new Map<string, AddressTarget>();
  private readonly dialStates = new Map<string, DialState>();
  /** what each peer said about itself on the members topic */
  readonly announced = new Map<string, AnnouncedPeer>();
  /**
   * Peers that held a connection with us (so they hold the key), and when they last connected or
   * left: one that dies before its announcement reached us is still shown, as down, for the member
   * TTL, and counts as a member this node is not alone with.
   */
  private readonly lastConnected = new Map<string, number>();
  private readonly controller = new AbortController();
  private inFlight = 0;

  constructor(private readonly deps: MembersDeps) {}

  /** Replace the members one source knows by peer id (e.g. the local registry's latest scan). */
  replacePeers(source: PeerSource, entries: Array<{ peerId: string; addrs: string[] }>): void {
    const seen = new Set<string>();
    for (const entry of entries) {
      seen.add(entry.peerId);
      this.learn(source, entry.peerId, entry.addrs);
    }
    for (const [peerId, target] of this.peers) {
      if (target.sources.has(source) && !seen.has(peerId)) {
        target.sources.delete(source);
        if (target.sources.size === 0) this.forgetPeer(peerId);
      }
    }
  }

  /** A member heard of from `source`; refreshes it if known. */
  learn(source: PeerSource, peerId: string, addrs: string[]): void {
    if (peerId === this.deps.selfId) return;
    let target = this.peers.get(peerId);
    if (!target && !validPeerId(peerId)) return;
    const usable = addrs.filter((a) => dialableAddress(a) !== undefined).map(withoutPeerId);
    if (!target) {
      if (usable.length === 0) return;
      target = { addrs: [], sources: new Map() };
      this.peers.set(peerId, target);
    }
    if (usable.length > 0) target.addrs = [...new Set(usable)].slice(0, 16);
    target.sources.set(source, this.deps.now());
  }

  /** Replace the address list of one source (static peers once, DNS on every poll). */
  replaceAddresses(source: AddressSource, addrs: string[]): void {
    const wanted = new Set(addrs.filter((a) => dialableAddress(a) !== undefined));
    for (const addr of wanted) {
      const target = this.addresses.get(addr) ?? { sources: new Set<AddressSource>() };
      target.sources.add(source);
      this.addresses.set(addr, target);
    }
    for (const [addr, target] of this.addresses) {
      if (target.sources.has(source) && !wanted.has(addr)) {
        target.sources.delete(source);
        if (target.sources.size === 0) {
          this.addresses.delete(addr);
          this.dialStates.delete(`addr:${addr}`);
        }
      }
    }
  }

  /** A peer announced itself on the members topic. */
  announce(peerId: string, addrs: string[], meta: Record<string, string>): void {
    if (peerId === this.deps.selfId) return;
    this.announced.set(peerId, { addrs, meta, at: this.deps.now() });
    this.learn("gossip", peerId, addrs);
  }

  /** A connection to the peer opened: dial it promptly again should it drop. */
  connected(peerId: string): void {
    this.lastConnected.set(peerId, this.deps.now());
    const state = this.dialStates.get(`peer:${peerId}`);
    if (state) {
      state.backoffMs = this.deps.minBackoffMs;
      state.nextDialAt = 0;
      state.failures = 0;
    }
    const target = this.peers.get(peerId);
    if (target) for (const source of target.sources.keys()) target.sources.set(source, this.deps.now());
  }

  /** The connection to the peer closed. */
  disconnected(peerId: string): void {
    if (this.lastConnected.has(peerId)) this.lastConnected.set(peerId, this.deps.now());
  }

  /** Addresses to announce for a connected peer: what it said of itself, else what we dial it by. */
  addressesOf(peerId: string): string[] {
    return this.announced.get(peerId)?.addrs ?? this.peers.get(peerId)?.addrs ?? [];
  }

  /** How many members there are to connect to: peers by id, and addresses not known to be this node. */
  targetCount(): number {
    const own = new Set(this.deps.ownAddresses().map(withoutPeerId));
    let count = this.peers.size;
    for (const [addr, target] of this.addresses) {
      if (target.peerId === this.deps.selfId || own.has(withoutPeerId(addr))) continue;
      if (/\/p2p\/([^/]+)$/.exec(addr)?.[1] === this.deps.selfId) continue;
      count += 1;
    }
    return count;
  }

  knownPeerIds(): string[] {
    return [...new Set([...this.peers.keys(), ...this.lastConnected.keys()])];
  }

  /** One turn of the redial loop: forget expired members, dial those due. */
  tick(): void {
    const now = this.deps.now();
    this.expire(now);
    const max = this.deps.maxParallelDials ?? 8;
    for (const [peerId, target] of this.peers) {
      if (this.inFlight >= max) return;
      if (this.deps.isConnected(peerId)) continue;
      const addrs = target.addrs.map((a) => `${a}/p2p/${peerId}`);
      this.maybeDial(`peer:${peerId}`, addrs, now);
    }
    const own = new Set(this.deps.ownAddresses().map(withoutPeerId));
    for (const [addr, target] of this.addresses) {
      if (this.inFlight >= max) return;
      if (target.peerId && (target.peerId === this.deps.selfId || this.deps.isConnected(target.peerId))) continue;
      if (own.has(withoutPeerId(addr))) continue;
      const addrPeer = /\/p2p\/([^/]+)$/.exec(addr)?.[1];
      if (addrPeer === this.deps.selfId) continue;
      if (addrPeer && this.deps.isConnected(addrPeer)) continue;
      this.maybeDial(`addr:${addr}`, [addr], now, (peerId) => {
        target.peerId = peerId;
      });
    }
  }

  stop(): void {
    this.controller.abort();
  }

  private expire(now: number): void {
    for (const [peerId, target] of this.peers) {
      for (const source of ["gossip", "mdns"] as const) {
        const at = target.sources.get(source);
        if (at !== undefined && now - at > this.deps.memberTtlMs && !this.deps.isConnected(peerId)) {
          target.sources.delete(source);
        }
      }
      if (target.sources.size === 0) this.forgetPeer(peerId);
    }
    for (const [peerId, announced] of this.announced) {
      if (now - announced.at > this.deps.memberTtlMs && !this.deps.isConnected(peerId)) this.announced.delete(peerId);
    }
    for (const [peerId, at] of this.lastConnected) {
      if (now - at > this.deps.memberTtlMs && !this.deps.isConnected(peerId)) this.lastConnected.delete(peerId);
    }
  }

  private forgetPeer(peerId: string): void {
    this.peers.delete(peerId);
    this.dialStates.delete(`peer:${peerId}`);
  }

  private maybeDial(key: string, addrs: string[], now: number, onPeer?: (peerId: string) => void): void {
    let state = this.dialStates.get(key);
    if (!state) {
      state = { backoffMs: this.deps.minBackoffMs, nextDialAt: 0, dialing: false, failures: 0 };
      this.dialStates.set(key, state);
    }
    if (state.dialing || now < state.nextDialAt || this.controller.signal.aborted) return;
    const mas = addrs.map((a) => dialableAddress(a)).filter((a): a is Multiaddr => a !== undefined);
    if (mas.length === 0) return;
    const dialState = state;
    dialState.dialing = true;
    this.inFlight += 1;
    const signal = AbortSignal.any([this.controller.signal, AbortSignal.timeout(this.deps.dialTimeoutMs ?? 5_000)]);
    this.deps
      .dial(mas, signal)
      .then((peerId) => {
        onPeer?.(peerId);
        dialState.backoffMs = this.deps.minBackoffMs;
        dialState.failures = 0;
        dialState.nextDialAt = this.deps.now() + this.deps.minBackoffMs;
      })
      .catch((error: unknown) => {
        if (this.controller.signal.aborted) return;
        dialState.failures += 1;
        // the first failure of a target is worth a line; a dead peer retried forever is not
        if (dialState.failures === 1 || dialState.failures % 20 === 0) {
          this.deps.log.warn("cluster: dial failed", {
            target: key,
            failures: dialState.failures,
            error: (error as Error).message,
          });
        }
        dialState.nextDialAt = this.deps.now() + dialState.backoffMs;
        dialState.backoffMs = Math.min(dialState.backoffMs * 2, this.deps.maxBackoffMs);
      })
      .finally(() => {
        dialState.dialing = false;
        this.inFlight -= 1;
      });
  }
}
