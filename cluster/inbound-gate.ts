/**
 * The cluster port's doorman: refuses inbound connections before any handshake work when they come
 * from an address that is not a member (members from CLUSTER_PEERS / CLUSTER_DNS), and keeps one
 * address from holding more than a few connections that have not finished their upgrade, so a
 * flood of keyless connections cannot fill the inbound slots a member with the key needs.
 */
import type { ConnectionGater, MultiaddrConnection } from "@libp2p/interface";

export interface InboundGateOptions {
  /** inbound connections of one address still in their upgrade (pnet, noise, yamux) at a time */
  maxPendingPerAddress?: number;
}

export type InboundRefusal = "not-a-member" | "pending-per-address";

const DEFAULT_MAX_PENDING_PER_ADDRESS = 8;
/** past this many tracked addresses, finished entries are swept */
const SWEEP_AT = 1_000;

/** `::ffff:10.0.0.1` and `10.0.0.1` are one address; IPv6 compared lower-case. */
export function normaliseAddress(ip: string): string {
  const lower = ip.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/.test(lower) ? lower.slice(7) : lower;
}

/** The IP of a `/ip4/…` or `/ip6/…` multiaddr, or undefined (a DNS multiaddr). */
export function multiaddrIp(addr: string): string | undefined {
  const match = /^\/ip[46]\/([^/]+)\//.exec(addr);
  return match ? normaliseAddress(match[1]!) : undefined;
}

export class InboundGate {
  /** member addresses by where they came from; undefined while any address may connect */
  private members: Map<string, Set<string>> | undefined;
  private readonly pending = new Map<string, MultiaddrConnection[]>();
  readonly refused: Record<InboundRefusal, number> = { "not-a-member": 0, "pending-per-address": 0 };
  private readonly maxPending: number;

  constructor(options: InboundGateOptions = {}) {
    this.maxPending = options.maxPendingPerAddress ?? DEFAULT_MAX_PENDING_PER_ADDRESS;
  }

  /** From now on only these sources' addresses may connect; a source's list replaces its previous one. */
  allowMembers(source: string, addresses: string[]): void {
    this.members ??= new Map();
    this.members.set(source, new Set(addresses.map(normaliseAddress)));
  }

  get restricted(): boolean {
    return this.members !== undefined;
  }

  /** For libp2p's `connectionGater`: true means refuse, and the socket is closed at once. */
  gater(): ConnectionGater {
    return { denyInboundConnection: (maConn) => this.deny(maConn) };
  }

  private deny(maConn: MultiaddrConnection): boolean {
    const ip = normaliseAddress(maConn.remoteAddr.nodeAddress().address);
    if (this.members && ![...this.members.values()].some((set) => set.has(ip))) {
      this.refused["not-a-member"] += 1;
      return true;
    }
    const open = (this.pending.get(ip) ?? []).filter(inUpgrade);
    if (open.length >= this.maxPending) {
      this.pending.set(ip, open);
      this.refused["pending-per-address"] += 1;
      return true;
    }
    open.push(maConn);
    this.pending.set(ip, open);
    if (this.pending.size > SWEEP_AT) this.sweep();
    return false;
  }

  private sweep(): void {
    for (const [ip, conns] of this.pending) {
      const open = conns.filter(inUpgrade);
      if (open.length === 0) this.pending.delete(ip);
      else this.pending.set(ip, open);
    }
  }
}

/** Neither upgraded nor closed yet: libp2p stamps both moments on the connection's timeline. */
function inUpgrade(maConn: MultiaddrConnection): boolean {
  return maConn.timeline.close === undefined && maConn.timeline.upgraded === undefined;
}
