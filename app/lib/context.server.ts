/** What the app asks of the process that runs it: settings, keys, a logger and the cluster, declared here so `app/` never imports `server/`. */
import type { ClusterAtomics, Table, TableOptions } from "#cluster";

/** The settings the app reads; server/'s Config has all of them (checked where server/index.ts builds AppContext). */
export interface AppConfig {
  mode: "local" | "production";
  appUrl: URL;
  /** APP_URL and HOST are this machine's own (loopback): the Dev OIDC provider and open /cluster need it */
  loopback: boolean;
  smtpUrl: string | undefined;
  mailFrom: string;
  linkTtlMs: number;
  linkSameBrowser: boolean;
  accessTokenTtlSeconds: number;
  sessionTtlDays: number;
  sessionMaxDays: number;
  /** an older cookie generation still passes this long after a refresh (REFRESH_REUSE_GRACE_SECONDS) */
  refreshReuseGraceSeconds: number;
  adminEmails: string[];
  rateLimits: {
    windowMs: number;
    emailsPerAddress: number;
    emailsPerAddressTotal: number;
    requestsPerIp: number;
    openingsPerIp: number;
  };
  oauth: {
    timeoutMs: number;
    dev: { issuer: string; clientId: string } | undefined;
    github: OAuthClientSettings | undefined;
    google: OAuthClientSettings | undefined;
    oidc: (OAuthClientSettings & { issuer: string; name: string }) | undefined;
  };
  cluster: { name: string };
}

export interface OAuthClientSettings {
  clientId: string;
  clientSecret: string;
}

/** The subkeys the app uses, one per purpose (derived by server/ from SECRET_KEY_BASE). */
export interface AppKeys {
  kid: string;
  sealId: number;
  cookie: string;
  token: Uint8Array;
  link: string;
  linkCookie: string;
  oauthCookie: string;
  devOidcClient: string;
  audit: string;
}

export interface KeyRing {
  current: AppKeys;
  /** accepted when opening and verifying, never used to issue */
  previous: AppKeys[];
}

export type LogFields = Record<string, unknown>;

export interface Logger {
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

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
  config: AppConfig;
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
