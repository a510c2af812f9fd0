/**
 * Static peers from configuration: multiaddrs as they are, `host:port` turned into one (an IP
 * directly; a name is resolved like the DNS discovery, on every poll).
 */
import { isIP } from "node:net";
import { dialableAddress } from "../members";

export interface HostPort {
  host: string;
  port: number;
}

export interface StaticPeers {
  addrs: string[];
  names: HostPort[];
}

/** `host:port`, `[v6]:port`; undefined when it is not one. */
export function parseHostPort(text: string): HostPort | undefined {
  const match = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:[\]]+):(\d+)$/.exec(text);
  if (!match) return undefined;
  const port = Number(match[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  return { host: match[1], port };
}

export function ipMultiaddr(ip: string, port: number): string {
  return isIP(ip) === 6 ? `/ip6/${ip}/tcp/${port}` : `/ip4/${ip}/tcp/${port}`;
}

export function parseStaticPeers(peers: string[]): StaticPeers {
  const out: StaticPeers = { addrs: [], names: [] };
  for (const raw of peers) {
    const text = raw.trim();
    if (text.length === 0) continue;
    if (text.startsWith("/")) {
      if (!dialableAddress(text)) throw new Error(`cluster peer "${text}" is not a TCP multiaddr`);
      out.addrs.push(text);
      continue;
    }
    const hostPort = parseHostPort(text);
    if (!hostPort) throw new Error(`cluster peer "${text}" is neither a multiaddr nor host:port`);
    if (isIP(hostPort.host)) out.addrs.push(ipMultiaddr(hostPort.host, hostPort.port));
    else out.names.push(hostPort);
  }
  return out;
}
