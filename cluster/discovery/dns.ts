/**
 * DNS discovery: a name whose address records are the peers (a Kubernetes headless service, a
 * round-robin record), looked up on every poll. `name:port` gives the peers' port; a bare name
 * means the peers listen on this node's own cluster port.
 */
import { lookup } from "node:dns/promises";
import { ipMultiaddr, parseHostPort, type HostPort } from "./static";

export function parseDnsName(spec: string, ownPort: number): HostPort {
  const hostPort = parseHostPort(spec.trim());
  if (hostPort) return hostPort;
  if (ownPort === 0) {
    throw new Error(`cluster DNS name "${spec}" has no port and the cluster port is ephemeral: use name:port`);
  }
  return { host: spec.trim(), port: ownPort };
}

export type Resolver = (host: string) => Promise<string[]>;

export const systemResolver: Resolver = async (host) => {
  const records = await lookup(host, { all: true, verbatim: true });
  return records.map((r) => r.address);
};

/** Multiaddrs of every address each name resolves to; names that fail resolve to nothing. */
export async function resolvePeerNames(
  names: HostPort[],
  resolve: Resolver,
  onError: (name: string, error: Error) => void,
): Promise<string[]> {
  const out: string[] = [];
  for (const { host, port } of names) {
    try {
      for (const ip of await resolve(host)) out.push(ipMultiaddr(ip, port));
    } catch (error) {
      onError(host, error as Error);
    }
  }
  return [...new Set(out)];
}
