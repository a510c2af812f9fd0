/** What the app asks of the process that runs it: settings, keys, a logger and the cluster, declared here so `app/` never imports `server/`. */
import type { ClusterAtomics, Table, TableOptions } from "#cluster";
import type { Brand } from "#app/lib/brand.ts";
import type { TemplateFiles } from "#app/lib/mail/templates.ts";

/** The settings the app reads; server/'s Config extends it with the process's own. */
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
  /** COOKIE_DOMAIN without its leading dot (the session cookie's Domain), or undefined: host-only */
  cookieDomain: string | undefined;
  /** FORWARD_AUTH_HOSTS: where a sign-in may send the person back to (`host`, `host:port`, `*.example.com`) */
  forwardAuthHosts: string[];
  rateLimits: {
    windowMs: number;
    /** link emails per mailbox and client (IP, IPv6 /64), cluster-wide */
    emailsPerAddress: number;
    /** link emails per mailbox from all clients together, cluster-wide: bounds mail bombing */
    emailsPerAddressTotal: number;
    /** link requests per client IP, per node */
    requestsPerIp: number;
    /** link openings per client IP, per node */
    openingsPerIp: number;
  };
  /** sign-in through other providers: see README, Social login */
  oauth: {
    /** how long any one request to a provider may take */
    timeoutMs: number;
    /** the development OpenID provider served at APP_URL/dev/oidc (local mode only; DEV_OIDC) */
    dev: { issuer: string; clientId: string } | undefined;
    github: OAuthClientSettings | undefined;
    google: OAuthClientSettings | undefined;
    oidc: (OAuthClientSettings & { issuer: string; name: string }) | undefined;
  };
  cluster: { name: string };
  /** APP_NAME, APP_LOGO_URL, APP_ACCENT_COLOR: on every page and email */
  brand: Brand;
  /** EMAIL_TEMPLATES_DIR's templates (file name → text), checked at start; empty: the shipped ones */
  emailTemplates: TemplateFiles;
  /** the OpenID provider for other apps (OIDC_PROVIDER_CLIENTS_FILE); undefined: off, its routes 404 */
  provider: ProviderSettings | undefined;
  /** ADMIN_API_TOKEN: a Bearer token for /api/admin/* (at least 32 characters); undefined: sessions of ADMIN_EMAILS only */
  adminApiToken?: string;
  /** who may create an account: see README, Who may sign up */
  signup?: SignupSettings;
  /** signed webhooks (Standard Webhooks): see README, Webhooks */
  webhooks?: WebhookSettings;
}

/** OIDC_PROVIDER_*: the clients allowed to sign people in through this cluster, and token lifetimes. */
export interface ProviderSettings {
  clients: ProviderClient[];
  accessTokenTtlSeconds: number;
  /** a refresh token's life, renewed by each rotation */
  refreshTokenTtlDays: number;
  /** a refresh token family's absolute life, from its first token */
  refreshTokenMaxDays: number;
  codeTtlSeconds: number;
}

/** One client's metadata as oidc-provider takes it (snake_case), checked at start; `first_party` skips consent. */
export interface ProviderClient {
  client_id: string;
  client_name?: string;
  client_secret?: string;
  token_endpoint_auth_method: "client_secret_basic" | "client_secret_post" | "none";
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  grant_types: string[];
  response_types: string[];
  application_type?: "web" | "native";
  first_party: boolean;
  backchannel_logout_uri?: string;
  backchannel_logout_session_required?: boolean;
  id_token_signed_response_alg?: "RS256" | "EdDSA";
  scope?: string;
}

export interface SignupSettings {
  /** SIGNUP: open (default), invite (invited addresses and allowed domains), closed (nobody new) */
  mode: "open" | "invite" | "closed";
  /** SIGNUP_ALLOWED_DOMAINS: lower-case domains, `*.example.com` for its subdomains; empty: any */
  allowedDomains: string[];
  /** SIGNUP_BLOCKED_DOMAINS: never sign up, whatever else says */
  blockedDomains: string[];
}

export interface WebhookSettings {
  /** WEBHOOK_URLS: every event goes to each */
  urls: string[];
  /** WEBHOOK_SECRET: the key bytes of `whsec_<base64>` */
  secret: Uint8Array;
  /** events kept waiting for delivery on this node at most; older ones are dropped past it */
  maxQueue: number;
  /** give up on an event this long after it happened (24 h) */
  retryForMs: number;
}

export interface OAuthClientSettings {
  clientId: string;
  clientSecret: string;
}

/** The subkeys the app uses, one per purpose (derived by server/ from SECRET_KEY_BASE). */
export interface AppKeys {
  /** a fingerprint of this secret's key-id subkey: iron seal ids derive from it */
  kid: string;
  /** numeric id iron seals carry, so rotated secrets are tried by id, not by guessing */
  sealId: number;
  cookie: string;
  /** the access tokens' subkey: their Ed25519 key pair derives from it and the issuer */
  token: Uint8Array;
  link: string;
  linkCookie: string;
  /** seals the short-lived cookie holding a provider sign-in's state, PKCE verifier and nonce */
  oauthCookie: string;
  /** the client secret shared by this node's development OpenID provider and its client */
  devOidcClient: string;
  /** keys the hash of email addresses in logs and rate-limit rows, so they cannot be looked up */
  audit: string;
  /** the OpenID provider's: its RS256 and Ed25519 signing keys and its cookie keys derive from it */
  provider: Uint8Array;
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
  readonly store: {
    table<V>(name: string, options?: TableOptions<V>): Table<V>;
    /** grows with every write this node makes: an answer that follows one waits for `durable()` */
    readonly counters: { readonly localWrites: number };
  };
  isReady(): boolean;
  status(): unknown;
  request(nodeId: string, method: string, body: unknown, timeoutMs?: number): Promise<unknown>;
  handle(method: string, handler: (body: unknown, fromNodeId: string) => Promise<unknown>): void;
  /** resolves when this node's writes so far are durable; rejects with ClusterUnavailableError */
  durable(): Promise<void>;
  /** single use and rate limits decided atomically; `scope: "cluster"` in Redis mode (absent: decide as gossip does) */
  readonly atomics?: ClusterAtomics;
}

/**
 * What the session layer adds to the answer of the request it serves: a re-sealed session cookie
 * (a sliding renewal, a refresh's next generation, a sign-out's clearing) or a fresh access token.
 * server/ makes one per request and attaches it to whatever response leaves (page, data request,
 * thrown redirect, error page, the fast API), so no route can drop it by forgetting a header.
 */
export interface SessionHeaders {
  /** a Set-Cookie line; a later one for the same cookie name replaces an earlier one */
  cookie(setCookie: string): void;
  /** a response header such as X-Access-Token; a later value replaces an earlier one */
  header(name: string, value: string): void;
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
    /** this request's pending session headers (app/lib/auth writes them; server/ sends them) */
    sessionHeaders: SessionHeaders;
  }
}
