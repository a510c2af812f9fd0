/**
 * The cluster port's doorman. It decides, before any handshake work, which inbound connections
 * may start their upgrade (pnet, noise, yamux):
 *  - with members listed by the operator (CLUSTER_PEERS / CLUSTER_DNS), every other address is
 *    refused outright;
 *  - known members (those lists, the local registry, and addresses a peer with the key has
 *    connected from) have their own pool of handshake slots that strangers cannot touch;
 *  - unknown addresses share a second, bounded pool fairly: an address holds at most its share
 *    of it, a newcomer takes the oldest slot of the address holding the most, and an unknown
 *    connection gets `unknownTimeoutMs` (not the whole upgrade timeout) to finish.
 * So a flood of keyless connections, from one address or many, cannot keep a member out.
 */
import type { ConnectionGater, MultiaddrConnection } from "@libp2p/interface";

export interface InboundGateOptions {
  /** handshake slots kept for known members, all addresses together */
  memberSlots?: number;
  /** a known member address's pending handshakes at a time (every node of a one-host cluster shares 127.0.0.1) */
  maxPendingPerMember?: number;
  /** handshake slots unknown addresses share */
  unknownSlots?: number;
  /** an unknown address's pending handshakes at most (its fair share may be lower) */
  maxPendingPerAddress?: number;
  /** an unknown address's connection must finish its upgrade this fast */
  unknownTimeoutMs?: number;
  now?: () => number;
}

export type InboundRefusal = "not-a-member" | "pending-per-address" | "member-slots-full" | "evicted" | "too-slow";

/** Where a known member address came from: the first two restrict who may connect at all. */
export type MemberSource = "static" | "dns" | "local" | "authenticated";

const DEFAULTS = {
  memberSlots: 64,
  maxPendingPerMember: 32,
  unknownSlots: 32,
  maxPendingPerAddress: 8,
  unknownTimeoutMs: 1_000,
};
/** addresses remembered as "a peer with the key connected from here" */
const MAX_AUTHENTICATED = 256;

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

interface Pending {
  conn: MultiaddrConnection;
  at: number;
  timer?: NodeJS.Timeout;
}

export class InboundGate {
  private readonly sources = new Map<MemberSource, Set<string>>();
  private readonly member = new Map<string, Pending[]>();
  private readonly unknown = new Map<string, Pending[]>();
  readonly refused: Record<InboundRefusal, number> = {
    "not-a-member": 0,
    "pending-per-address": 0,
    "member-slots-full": 0,
    evicted: 0,
    "too-slow": 0,
  };
  /** connections let through, by pool */
  readonly admitted = { member: 0, unknown: 0 };
  private readonly options: Required<Omit<InboundGateOptions, "now">>;
  private readonly now: () => number;

  constructor(options: InboundGateOptions = {}) {
    const { now, ...rest } = options;
    this.options = { ...DEFAULTS, ...Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)) };
    this.now = now ?? Date.now;
  }

  /**
   * The addresses one source knows; replaces its previous list. Addresses from "static" or "dns"
   * also restrict the port: once either is set, nobody else may connect.
   */
  allowMembers(source: MemberSource, addresses: string[]): void {
    this.sources.set(source, new Set(addresses.map(normaliseAddress)));
  }

  /** A peer with the key connected from `ip`: its address is a member's from now on. */
  authenticated(ip: string): void {
    const set = this.sources.get("authenticated") ?? new Set<string>();
    const address = normaliseAddress(ip);
    set.delete(address);
    set.add(address);
    // the oldest goes first: a set iterates in insertion order
    if (set.size > MAX_AUTHENTICATED) set.delete(set.values().next().value!);
    this.sources.set("authenticated", set);
  }

  get restricted(): boolean {
    return this.sources.has("static") || this.sources.has("dns");
  }

  isMember(ip: string): boolean {
    const address = normaliseAddress(ip);
    for (const set of this.sources.values()) if (set.has(address)) return true;
    return false;
  }

  /** Handshakes in progress, by pool (for /cluster.json). */
  pending(): { member: number; unknown: number } {
    return { member: count(this.member), unknown: count(this.unknown) };
  }

  /** For libp2p's `connectionGater`: true means refuse, and the socket is closed at once. */
  gater(): ConnectionGater {
    return { denyInboundConnection: (maConn) => this.deny(maConn) };
  }

  /** Decide on one inbound connection; exported for tests through `gater()`. */
  deny(conn: MultiaddrConnection): boolean {
    const ip = normaliseAddress(conn.remoteAddr.nodeAddress().address);
    const restricted = this.restricted;
    const known = this.isMember(ip);
    if (restricted && !(this.sources.get("static")?.has(ip) || this.sources.get("dns")?.has(ip))) {
      this.refused["not-a-member"] += 1;
      return true;
    }
    return known ? this.admitMember(ip, conn) : this.admitUnknown(ip, conn);
  }

  private admitMember(ip: string, conn: MultiaddrConnection): boolean {
    const mine = live(this.member, ip);
    if (mine.length >= this.options.maxPendingPerMember || count(this.member) >= this.options.memberSlots) {
      this.refused["member-slots-full"] += 1;
      return true;
    }
    mine.push({ conn, at: this.now() });
    this.member.set(ip, mine);
    this.admitted.member += 1;
    return false;
  }

  private admitUnknown(ip: string, conn: MultiaddrConnection): boolean {
    const mine = live(this.unknown, ip);
    const addresses = this.unknown.size + (this.unknown.has(ip) ? 0 : 1);
    const share = Math.max(
      1,
      Math.min(this.options.maxPendingPerAddress, Math.floor(this.options.unknownSlots / addresses)),
    );
    if (mine.length >= share) {
      this.refused["pending-per-address"] += 1;
      return true;
    }
    if (count(this.unknown) >= this.options.unknownSlots) {
      // full: the address holding the most gives up its oldest slot, if it holds more than this one
      const [heaviest, theirs] = [...this.unknown].reduce((a, b) => (b[1].length > a[1].length ? b : a));
      if (theirs.length <= mine.length + 1) {
        this.refused["pending-per-address"] += 1;
        return true;
      }
      const oldest = theirs.shift()!;
      if (theirs.length === 0) this.unknown.delete(heaviest);
      clearTimeout(oldest.timer);
      this.refused.evicted += 1;
      oldest.conn.abort(new Error("inbound handshake evicted: another address needs the slot"));
    }
    const entry: Pending = { conn, at: this.now() };
    entry.timer = setTimeout(() => {
      if (!inUpgrade(conn)) return;
      this.refused["too-slow"] += 1;
      conn.abort(new Error(`inbound handshake from an unknown address took over ${this.options.unknownTimeoutMs} ms`));
    }, this.options.unknownTimeoutMs);
    entry.timer.unref?.();
    mine.push(entry);
    this.unknown.set(ip, mine);
    this.admitted.unknown += 1;
    return false;
  }
}

/** The address's handshakes still in progress; finished ones are dropped (and their timers). */
function live(pool: Map<string, Pending[]>, ip: string): Pending[] {
  const entries = pool.get(ip);
  if (!entries) return [];
  const open = entries.filter((p) => {
    if (inUpgrade(p.conn)) return true;
    clearTimeout(p.timer);
    return false;
  });
  if (open.length === 0) pool.delete(ip);
  else pool.set(ip, open);
  return open;
}

/** Handshakes in progress in a pool, sweeping finished ones. */
function count(pool: Map<string, Pending[]>): number {
  let n = 0;
  for (const ip of [...pool.keys()]) n += live(pool, ip).length;
  return n;
}

/** Neither upgraded nor closed yet: libp2p stamps both moments on the connection's timeline. */
function inUpgrade(conn: MultiaddrConnection): boolean {
  return conn.timeline.close === undefined && conn.timeline.upgraded === undefined;
}
