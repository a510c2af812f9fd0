import type { Config } from "../../server/config";
import type { KeyRing } from "../../server/keys";
import type { Logger } from "../../server/log";
import type { ClusterAtomics, Table, TableOptions } from "#cluster";

/** What the app needs of the cluster: tables and a way to ask one node. */
export interface ClusterPort {
  readonly nodeId: string;
  readonly store: { table<V>(name: string, options?: TableOptions<V>): Table<V> };
  isReady(): boolean;
  status(): unknown;
  request(nodeId: string, method: string, body: unknown, timeoutMs?: number): Promise<unknown>;
  handle(method: string, handler: (body: unknown, fromNodeId: string) => Promise<unknown>): void;
  /** resolves when this node's writes so far are durable; rejects with ClusterUnavailableError */
  durable(): Promise<void>;
  /** single use and rate limits decided atomically; `scope: "cluster"` in Redis mode (absent: decide as gossip does) */
  readonly atomics?: ClusterAtomics;
}

/** Remix load context, built once per process by server/ and handed to every loader and action. */
export interface AppContext {
  config: Config;
  keys: KeyRing;
  cluster: ClusterPort;
  log: Logger;
}

declare module "@remix-run/node" {
  interface AppLoadContext {
    app: AppContext;
    /** this response's Content-Security-Policy nonce, for the inline scripts Remix renders */
    cspNonce: string;
    /** the client's address: the socket's, or X-Forwarded-For's as far as TRUST_PROXY allows */
    clientIp: string;
  }
}
