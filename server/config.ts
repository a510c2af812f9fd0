import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { isIP } from "node:net";
import { z } from "zod";
import type { AppConfig, OAuthClientSettings } from "#app/lib/context.server.ts";
import type { RedisSettings } from "#cluster";
import { isLoopbackHost } from "./loopback";
import { redisSettings } from "./redis-config";

export { redisSettings };
import { normaliseHexColor, type Brand } from "#app/lib/brand.ts";
import { checkTemplates, type TemplateFiles } from "#app/lib/mail/templates.ts";
import { providerSettings } from "./provider-clients";

/** Everything the process needs, read once from the environment and validated. */
/** Every setting, read once; the app's part of it (AppConfig) is declared by the app itself. */
export interface Config extends AppConfig {
  port: number;
  host: string;
  /** local mode on a non-loopback APP_URL/HOST, allowed by ALLOW_NON_LOOPBACK_LOCAL_MODE (a staging box) */
  offLoopbackOverride: boolean;
  /** origins accepted for form posts: APP_URL's, plus its loopback aliases in local mode */
  allowedOrigins: string[];
  secretKeyBase: string;
  secretKeyBasePrevious: string[];
  /** where the local-mode secret came from, for the start-up log line (never the secret) */
  secretSource: "env" | "generated" | "dev-secret-file";
  dataDir: string;
  /** the tables file in DATA_DIR (`sqlite`, the default) or none (`off`: benchmarks only, refused in production) */
  persistence: { mode: "file" | "off"; maxBytes: number | undefined };
  /** TOMBSTONE_HORIZON_SECONDS: deletions are kept this long, then forgotten; a file last in step longer ago is refused */
  tombstoneHorizonMs: number;
  bodyLimitBytes: number;
  /** METRICS_TOKEN: a Bearer token that may read /metrics in production (local mode: open) */
  metricsToken: string | undefined;
  /** Express "trust proxy": whose X-Forwarded-For to believe for the client's IP (false: the socket's) */
  trustProxy: boolean | number | string[];
  cluster: {
    name: string;
    secret: string | undefined;
    host: string;
    port: number;
    peers: string[];
    dns: string | undefined;
    discovery: "local" | "none" | "mdns";
    registryDir: string | undefined;
    /** CLUSTER_READY_TIMEOUT_SECONDS: a node that knows of peers but caught up from none is ready after this long */
    readyTimeoutMs: number;
    /** REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES set: Redis mode (see README, Redis mode) */
    redis: RedisSettings | undefined;
    /** gossip mode: ACK_COPIES, ACK_TIMEOUT_MS, ACK_STRICT (see README, Durability) */
    acks: { copies: number; timeoutMs: number; strict: boolean };
  };
}

export type { OAuthClientSettings };

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join("\n"));
  }
}

type Env = Record<string, string | undefined>;

const DEV_SECRET_FILE = path.join(".data", "dev-secret");
const MIN_SECRET_LENGTH = 32;

const list = (value: string | undefined) =>
  (value ?? "")
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean);

function intSetting(env: Env, name: string, fallback: number, min: number, max: number, problems: string[]): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    problems.push(`${name} must be a whole number from ${min} to ${max} (got "${raw}")`);
    return fallback;
  }
  return value;
}

function boolSetting(env: Env, name: string, fallback: boolean, problems: string[]): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === "") return fallback;
  if (["1", "true", "yes", "on"].includes(raw)) return true;
  if (["0", "false", "no", "off"].includes(raw)) return false;
  problems.push(`${name} must be true or false (got "${env[name]}")`);
  return fallback;
}

/** Read the shared local secret, creating it (mode 0600) on first use, so all local nodes agree. */
function localSecret(cwd: string): { secret: string; source: "generated" | "dev-secret-file" } {
  const file = path.resolve(cwd, DEV_SECRET_FILE);
  if (existsSync(file)) {
    const secret = readFileSync(file, "utf8").trim();
    if (secret.length >= MIN_SECRET_LENGTH) return { secret, source: "dev-secret-file" };
  }
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const secret = randomBytes(32).toString("base64url");
  try {
    writeFileSync(file, `${secret}\n`, { mode: 0o600, flag: "wx" });
  } catch {
    // another local node created it at the same moment: use theirs
    return { secret: readFileSync(file, "utf8").trim(), source: "dev-secret-file" };
  }
  chmodSync(file, 0o600);
  return { secret, source: "generated" };
}

const urlSchema = z.string().url();

/** A scraper's shared secret: long enough not to be guessed, and no whitespace to mangle in a header. */
function metricsTokenSetting(raw: string | undefined, problems: string[]): string | undefined {
  const token = raw?.trim();
  if (!token) return undefined;
  if (token.length < 32 || /\s/.test(token)) {
    problems.push("METRICS_TOKEN must be at least 32 characters without spaces (npm run gen:secret prints one)");
    return undefined;
  }
  return token;
}

/** A provider is configured when its client id is set; the secret must come with it. */
function oauthClient(env: Env, prefix: string, problems: string[]): OAuthClientSettings | undefined {
  const clientId = env[`${prefix}_CLIENT_ID`]?.trim();
  const clientSecret = env[`${prefix}_CLIENT_SECRET`]?.trim();
  if (!clientId && !clientSecret) return undefined;
  if (!clientId || !clientSecret) {
    problems.push(`${prefix}_CLIENT_ID and ${prefix}_CLIENT_SECRET go together: set both, or neither`);
    return undefined;
  }
  return { clientId, clientSecret };
}

function oidcSettings(env: Env, production: boolean, problems: string[]): Config["oauth"]["oidc"] {
  const issuer = env.OIDC_ISSUER?.trim();
  const client = oauthClient(env, "OIDC", problems);
  if (!issuer) {
    if (client)
      problems.push("OIDC_CLIENT_ID is set but OIDC_ISSUER is not: set the issuer URL, e.g. https://id.example.com");
    return undefined;
  }
  const parsed = urlSchema.safeParse(issuer);
  const protocol = parsed.success ? new URL(issuer).protocol : "";
  if (!parsed.success || !(protocol === "https:" || (protocol === "http:" && !production))) {
    problems.push(
      `OIDC_ISSUER must be an ${production ? "https" : "http(s)"} URL, e.g. https://id.example.com (got "${issuer}")`,
    );
    return undefined;
  }
  if (!client) {
    problems.push("OIDC_ISSUER is set: OIDC_CLIENT_ID and OIDC_CLIENT_SECRET are required with it");
    return undefined;
  }
  const name = env.OIDC_NAME?.trim() || "OpenID Connect";
  if (name.length > 40) problems.push("OIDC_NAME must be at most 40 characters (it is the button's label)");
  return { ...client, issuer, name };
}

export function loadConfig(env: Env = process.env, cwd: string = process.cwd()): Config {
  const problems: string[] = [];
  const mode = env.NODE_ENV === "production" ? "production" : "local";
  const production = mode === "production";

  const port = intSetting(env, "PORT", 3000, 0, 65535, problems);
  const host = env.HOST?.trim() || (production ? "0.0.0.0" : "127.0.0.1");

  let appUrl = new URL(`http://localhost:${port}`);
  if (env.APP_URL) {
    if (!urlSchema.safeParse(env.APP_URL).success || !/^https?:$/.test(new URL(env.APP_URL).protocol)) {
      problems.push(`APP_URL must be an http(s) URL such as https://login.example.com (got "${env.APP_URL}")`);
    } else {
      appUrl = new URL(new URL(env.APP_URL).origin);
    }
  } else if (production) {
    problems.push("APP_URL is required in production: the public origin, e.g. https://login.example.com");
  }

  let secretKeyBase = env.SECRET_KEY_BASE?.trim() ?? "";
  let secretSource: Config["secretSource"] = "env";
  if (!secretKeyBase) {
    if (production) {
      problems.push("SECRET_KEY_BASE is required in production: `npm run gen:secret` prints one");
    } else {
      const local = localSecret(cwd);
      secretKeyBase = local.secret;
      secretSource = local.source;
    }
  } else if (secretKeyBase.length < MIN_SECRET_LENGTH) {
    problems.push(
      `SECRET_KEY_BASE must be at least ${MIN_SECRET_LENGTH} characters of random data: \`npm run gen:secret\` prints one`,
    );
  }
  const secretKeyBasePrevious = list(env.SECRET_KEY_BASE_PREVIOUS);
  if (secretKeyBasePrevious.some((s) => s.length < MIN_SECRET_LENGTH)) {
    problems.push(
      `SECRET_KEY_BASE_PREVIOUS: each comma-separated value must be at least ${MIN_SECRET_LENGTH} characters`,
    );
  }

  const smtpUrl = env.SMTP_URL?.trim() || undefined;
  if (smtpUrl && !/^smtps?:\/\/.+/.test(smtpUrl)) {
    problems.push("SMTP_URL must look like smtp://user:pass@host:587 or smtps://host:465");
  }
  if (!smtpUrl && production)
    problems.push("SMTP_URL is required in production: e.g. smtp://user:pass@smtp.example.com:587");

  const discovery = env.CLUSTER_DISCOVERY?.trim() || "local";
  if (!["local", "none", "mdns"].includes(discovery)) {
    problems.push(`CLUSTER_DISCOVERY must be local, none or mdns (got "${discovery}")`);
  }
  const clusterName = env.CLUSTER_NAME?.trim() || "pwdless-gs";
  if (!/^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$/.test(clusterName)) {
    problems.push("CLUSTER_NAME may hold letters, digits, '.', '_' and '-' (at most 63)");
  }
  const clusterSecret = env.CLUSTER_SECRET?.trim() || undefined;
  if (clusterSecret && clusterSecret.length < MIN_SECRET_LENGTH) {
    problems.push(`CLUSTER_SECRET must be at least ${MIN_SECRET_LENGTH} characters`);
  }

  // local mode hands out sign-ins (Dev OIDC) and table dumps (/cluster) to whoever can reach it:
  // it is for this machine only, unless an operator says otherwise, loudly, for a staging box
  const loopback = isLoopbackHost(appUrl.hostname) && isLoopbackHost(host);
  const offLoopbackOverride =
    !production && !loopback && boolSetting(env, "ALLOW_NON_LOOPBACK_LOCAL_MODE", false, problems);
  if (!production && !loopback && !offLoopbackOverride) {
    problems.push(
      `local mode is for this machine only, but ${isLoopbackHost(host) ? `APP_URL is ${appUrl.origin}` : `HOST is ${host}`}: set NODE_ENV=production (or, for a staging box, ALLOW_NON_LOOPBACK_LOCAL_MODE=true)`,
    );
  }
  if (offLoopbackOverride && !smtpUrl) {
    problems.push(
      "ALLOW_NON_LOOPBACK_LOCAL_MODE needs SMTP_URL: the outbox at /dev/mailbox would show sign-in links to anyone",
    );
  }
  const devProvider = boolSetting(env, "DEV_OIDC", !production && loopback, problems);
  if (devProvider && production) problems.push("DEV_OIDC cannot be enabled in production: remove the setting");
  else if (devProvider && !loopback)
    problems.push("DEV_OIDC needs a loopback APP_URL and HOST: it signs anyone in as any address; remove the setting");

  const persistence = persistenceSettings(env, production, problems);
  const cookieDomain = cookieDomainSetting(env.COOKIE_DOMAIN, appUrl, problems);
  const forwardAuthHosts = forwardAuthHostsSetting(env.FORWARD_AUTH_HOSTS, appUrl, cookieDomain, problems);
  const brand = brandSettings(env, production, problems);
  const emailTemplates = emailTemplatesSetting(env, cwd, problems);
  const adminApiToken = adminTokenSetting(env.ADMIN_API_TOKEN, problems);
  const signup = signupSettings(env, problems);
  const webhooks = webhookSettings(env, production, problems);

  const config: Config = {
    mode,
    port,
    host,
    appUrl,
    loopback,
    offLoopbackOverride,
    allowedOrigins: allowedOrigins(appUrl, production),
    secretKeyBase,
    secretKeyBasePrevious,
    secretSource,
    dataDir: path.resolve(cwd, env.DATA_DIR?.trim() || path.join(".data", `node-${port}`)),
    persistence,
    tombstoneHorizonMs:
      intSetting(env, "TOMBSTONE_HORIZON_SECONDS", 7 * 24 * 3600, 1, 365 * 24 * 3600, problems) * 1000,
    smtpUrl,
    mailFrom: env.MAIL_FROM?.trim() || `"${brand.name.replace(/["\\]/g, "")}" <no-reply@${appUrl.hostname}>`,
    brand,
    emailTemplates,
    linkTtlMs: intSetting(env, "LINK_TTL_MINUTES", 15, 1, 24 * 60, problems) * 60_000,
    linkSameBrowser: boolSetting(env, "LINK_SAME_BROWSER", true, problems),
    accessTokenTtlSeconds: intSetting(env, "ACCESS_TOKEN_TTL_SECONDS", 900, 1, 24 * 3600, problems),
    sessionTtlDays: intSetting(env, "SESSION_TTL_DAYS", 30, 1, 365, problems),
    sessionMaxDays: intSetting(env, "SESSION_MAX_DAYS", 90, 1, 3650, problems),
    refreshReuseGraceSeconds: intSetting(env, "REFRESH_REUSE_GRACE_SECONDS", 30, 0, 3600, problems),
    bodyLimitBytes: 64 * 1024,
    adminEmails: list(env.ADMIN_EMAILS).map((e) => e.toLowerCase()),
    cookieDomain,
    forwardAuthHosts,
    adminApiToken,
    signup,
    webhooks,
    metricsToken: metricsTokenSetting(env.METRICS_TOKEN, problems),
    trustProxy: trustProxySetting(env.TRUST_PROXY, problems),
    rateLimits: {
      windowMs: intSetting(env, "RATE_LIMIT_WINDOW_MINUTES", 10, 1, 24 * 60, problems) * 60_000,
      emailsPerAddress: intSetting(env, "RATE_LIMIT_EMAILS_PER_ADDRESS", 3, 1, 10_000, problems),
      emailsPerAddressTotal: intSetting(env, "RATE_LIMIT_EMAILS_PER_ADDRESS_TOTAL", 20, 1, 100_000, problems),
      requestsPerIp: intSetting(env, "RATE_LIMIT_REQUESTS_PER_IP", 30, 1, 1_000_000, problems),
      openingsPerIp: intSetting(env, "RATE_LIMIT_OPENINGS_PER_IP", 60, 1, 1_000_000, problems),
    },
    oauth: {
      timeoutMs: intSetting(env, "OAUTH_TIMEOUT_MS", 10_000, 100, 120_000, problems),
      dev:
        devProvider && !production && loopback
          ? { issuer: `${appUrl.origin}/dev/oidc`, clientId: "pwdless-gs-dev" }
          : undefined,
      github: oauthClient(env, "GITHUB", problems),
      google: oauthClient(env, "GOOGLE", problems),
      oidc: oidcSettings(env, production, problems),
    },
    cluster: {
      name: clusterName,
      secret: clusterSecret,
      // all interfaces only when members are elsewhere: then inbound connections are limited to them
      host:
        env.CLUSTER_HOST?.trim() ||
        (production && (list(env.CLUSTER_PEERS).length > 0 || !!env.CLUSTER_DNS?.trim() || discovery === "mdns")
          ? "0.0.0.0"
          : "127.0.0.1"),
      port: intSetting(env, "CLUSTER_PORT", 0, 0, 65535, problems),
      peers: list(env.CLUSTER_PEERS),
      dns: env.CLUSTER_DNS?.trim() || undefined,
      discovery: discovery as Config["cluster"]["discovery"],
      registryDir: env.CLUSTER_REGISTRY_DIR?.trim() || undefined,
      readyTimeoutMs: intSetting(env, "CLUSTER_READY_TIMEOUT_SECONDS", 30, 3, 3600, problems) * 1000,
      redis: redisSettings(env, problems),
      acks: {
        copies: intSetting(env, "ACK_COPIES", 2, 1, 5, problems),
        timeoutMs: intSetting(env, "ACK_TIMEOUT_MS", 2_000, 10, 60_000, problems),
        strict: boolSetting(env, "ACK_STRICT", false, problems),
      },
    },
    provider: providerSettings(env, cwd, production, problems),
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/** APP_NAME, APP_LOGO_URL, APP_ACCENT_COLOR: what people see on pages and in emails. */
export function brandSettings(env: Env, production: boolean, problems: string[]): Brand {
  const name = env.APP_NAME?.trim() || "PwdlessGs";
  // it is in every email subject: no line breaks (header injection), nothing invisible
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name) || name.length > 60) {
    problems.push("APP_NAME must be at most 60 characters with no line breaks or control characters");
  }
  let logoUrl: string | undefined;
  const rawLogo = env.APP_LOGO_URL?.trim();
  if (rawLogo) {
    if (rawLogo.startsWith("/") && !rawLogo.startsWith("//")) {
      logoUrl = rawLogo; // a file this site serves (public/)
    } else {
      try {
        const url = new URL(rawLogo);
        if (url.protocol !== "https:" && !(url.protocol === "http:" && !production)) {
          problems.push(
            `APP_LOGO_URL must be an https:// URL or a path on this site such as /logo.svg (got "${rawLogo}")`,
          );
        } else if (url.username || url.password) {
          problems.push("APP_LOGO_URL must not hold a user name or password");
        } else logoUrl = url.href;
      } catch {
        problems.push(
          `APP_LOGO_URL must be an https:// URL or a path on this site such as /logo.svg (got "${rawLogo}")`,
        );
      }
    }
  }
  let accentColor: string | undefined;
  const rawColor = env.APP_ACCENT_COLOR?.trim();
  if (rawColor) {
    accentColor = normaliseHexColor(rawColor);
    if (!accentColor) problems.push(`APP_ACCENT_COLOR must be a colour such as #2d5bd7 or #25d (got "${rawColor}")`);
  }
  return { name, logoUrl, accentColor };
}

/** EMAIL_TEMPLATES_DIR: the operator's email templates, read and checked once, every problem listed. */
export function emailTemplatesSetting(env: Env, cwd: string, problems: string[]): TemplateFiles {
  const raw = env.EMAIL_TEMPLATES_DIR?.trim();
  if (!raw) return {};
  const dir = path.resolve(cwd, raw);
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith(".html") || n.endsWith(".txt"));
  } catch (error) {
    problems.push(
      `EMAIL_TEMPLATES_DIR ${dir} cannot be read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
    return {};
  }
  if (names.length === 0) {
    problems.push(`EMAIL_TEMPLATES_DIR ${dir} holds no .html or .txt template: copy app/emails/ there and edit it`);
    return {};
  }
  const files: TemplateFiles = {};
  for (const name of names) {
    try {
      files[name] = readFileSync(path.join(dir, name), "utf8");
    } catch (error) {
      problems.push(
        `EMAIL_TEMPLATES_DIR: ${name} cannot be read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      );
    }
  }
  problems.push(...checkTemplates(files, dir));
  return files;
}

/** ADMIN_API_TOKEN: the operator's Bearer token for /api/admin/*; too short to be safe is refused at start. */
function adminTokenSetting(raw: string | undefined, problems: string[]): string | undefined {
  const token = raw?.trim();
  if (!token) return undefined;
  if (token.length < 32 || /\s/.test(token)) {
    problems.push("ADMIN_API_TOKEN must be at least 32 characters without spaces (npm run gen:secret prints one)");
    return undefined;
  }
  return token;
}

const DOMAIN = /^(\*\.)?[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?)*$/;

/** SIGNUP, SIGNUP_ALLOWED_DOMAINS, SIGNUP_BLOCKED_DOMAINS. */
function signupSettings(env: Env, problems: string[]): NonNullable<Config["signup"]> {
  const mode = env.SIGNUP?.trim().toLowerCase() || "open";
  if (mode !== "open" && mode !== "invite" && mode !== "closed") {
    problems.push(`SIGNUP must be open, invite or closed (got "${env.SIGNUP}")`);
  }
  const domains = (name: string) => {
    const values = list(env[name]).map((d) => d.toLowerCase());
    for (const d of values) {
      if (!DOMAIN.test(d))
        problems.push(`${name}: "${d}" is not a domain (example.com, or *.example.com for its subdomains)`);
    }
    return values;
  };
  return {
    mode: mode === "invite" || mode === "closed" ? mode : "open",
    allowedDomains: domains("SIGNUP_ALLOWED_DOMAINS"),
    blockedDomains: domains("SIGNUP_BLOCKED_DOMAINS"),
  };
}

/** WEBHOOK_URLS and WEBHOOK_SECRET (`whsec_` + base64 of at least 24 random bytes), together or not at all. */
function webhookSettings(env: Env, production: boolean, problems: string[]): Config["webhooks"] {
  const urls = list(env.WEBHOOK_URLS);
  const rawSecret = env.WEBHOOK_SECRET?.trim();
  const maxQueue = intSetting(env, "WEBHOOK_MAX_QUEUE", 10_000, 1, 1_000_000, problems);
  if (urls.length === 0 && !rawSecret) return undefined;
  if (urls.length === 0 || !rawSecret) {
    problems.push("WEBHOOK_URLS and WEBHOOK_SECRET go together: set both, or neither");
    return undefined;
  }
  for (const u of urls) {
    const ok = urlSchema.safeParse(u).success && /^https?:$/.test(new URL(u).protocol);
    if (!ok) problems.push(`WEBHOOK_URLS: "${u}" is not an http(s) URL`);
    else if (production && new URL(u).protocol !== "https:" && !isLoopbackHost(new URL(u).hostname)) {
      problems.push(`WEBHOOK_URLS: "${u}" must be https in production (events carry addresses)`);
    }
  }
  const match = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(rawSecret);
  const secret = match ? Buffer.from(match[1]!, "base64") : undefined;
  if (!secret || secret.length < 24 || secret.length > 64) {
    problems.push(
      "WEBHOOK_SECRET must be whsec_ followed by the base64 of 24 to 64 random bytes, e.g. whsec_$(openssl rand -base64 32)",
    );
    return undefined;
  }
  return { urls, secret: new Uint8Array(secret), maxQueue, retryForMs: 24 * 3600 * 1000 };
}

/**
 * PERSISTENCE (file | off; `sqlite`, its name before decision 015, still means file) and
 * DATA_MAX_MB (a cap on the tables files, in MB, decimals allowed).
 */
function persistenceSettings(env: Env, production: boolean, problems: string[]): Config["persistence"] {
  const mode = env.PERSISTENCE?.trim().toLowerCase() || "file";
  if (mode !== "file" && mode !== "sqlite" && mode !== "off")
    problems.push(`PERSISTENCE must be file or off (got "${env.PERSISTENCE}")`);
  if (mode === "off" && production) {
    problems.push("PERSISTENCE=off keeps nothing across restarts and is for benchmarks only: remove it in production");
  }
  const raw = env.DATA_MAX_MB?.trim();
  let maxBytes: number | undefined;
  if (raw) {
    const mb = Number(raw);
    if (!Number.isFinite(mb) || mb <= 0)
      problems.push(`DATA_MAX_MB must be a positive number of megabytes (got "${raw}")`);
    else maxBytes = Math.round(mb * 1024 * 1024);
  }
  return { mode: mode === "off" ? "off" : "file", maxBytes };
}

const LABEL = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?";
/** a host name; DNS_NAME: one of two labels or more */
const HOST_NAME = new RegExp(`^(?=.{1,253}$)${LABEL}(?:\\.${LABEL})*$`);
const DNS_NAME = new RegExp(`^(?=.{1,253}$)${LABEL}(?:\\.${LABEL})+$`);

/** `name` is `domain` or one of its subdomains. */
const within = (name: string, domain: string) => name === domain || name.endsWith(`.${domain}`);

/**
 * COOKIE_DOMAIN (`.example.com` or `example.com`): the session cookie's Domain, so it reaches the
 * sibling hosts forward auth protects. A browser takes it only from a host within it, so it must
 * be APP_URL's host or a parent of it, and a name of two labels or more (not an address, not a TLD).
 */
export function cookieDomainSetting(raw: string | undefined, appUrl: URL, problems: string[]): string | undefined {
  if (!raw?.trim()) return undefined;
  const value = raw.trim().toLowerCase().replace(/^\./, "");
  if (!DNS_NAME.test(value) || /^[\d.]+$/.test(value)) {
    problems.push(
      `COOKIE_DOMAIN must be a domain name of two labels or more, such as .example.com (got "${raw.trim()}")`,
    );
    return undefined;
  }
  if (!within(appUrl.hostname, value)) {
    problems.push(
      `COOKIE_DOMAIN must be APP_URL's host or a parent of it (APP_URL's host is ${appUrl.hostname}, COOKIE_DOMAIN is ${value}): browsers refuse a cookie for another domain`,
    );
    return undefined;
  }
  return value;
}

/**
 * FORWARD_AUTH_HOSTS: where a sign-in may send the person back to (comma-separated `host`,
 * `host:port`, `*.example.com`). Each must be reachable by the session cookie (APP_URL's host, or
 * within COOKIE_DOMAIN), or forward auth could never let anyone in there.
 */
export function forwardAuthHostsSetting(
  raw: string | undefined,
  appUrl: URL,
  cookieDomain: string | undefined,
  problems: string[],
): string[] {
  const hosts: string[] = [];
  for (const entry of list(raw).map((e) => e.toLowerCase())) {
    const match = /^(\*\.)?([^:[\]]+|\[[0-9a-f:.]+\])(?::(\d{1,5}))?$/.exec(entry);
    const [, wildcard, name = "", port] = match ?? [];
    const address = isIP(name) !== 0 || /^\[.*\]$/.test(name);
    const wellFormed =
      !!match &&
      (!port || (Number(port) >= 1 && Number(port) <= 65535)) &&
      (wildcard ? DNS_NAME.test(name) : address || HOST_NAME.test(name));
    if (!wellFormed) {
      problems.push(
        `FORWARD_AUTH_HOSTS: "${entry}" is not a host, host:port or *.domain (e.g. app.example.com,*.apps.example.com)`,
      );
      continue;
    }
    const reachable = wildcard
      ? !!cookieDomain && within(name, cookieDomain)
      : name === appUrl.hostname || (!!cookieDomain && within(name, cookieDomain));
    if (!reachable) {
      problems.push(
        `FORWARD_AUTH_HOSTS: ${entry} is neither APP_URL's host (${appUrl.hostname}) nor within COOKIE_DOMAIN${cookieDomain ? ` (${cookieDomain})` : " (unset)"}: the session cookie never reaches it, so nobody could get in there; set COOKIE_DOMAIN to a parent of both`,
      );
      continue;
    }
    hosts.push(entry);
  }
  return hosts;
}

/** TRUST_PROXY: unset/false, true (every hop), a hop count, or proxy addresses/subnets (comma-separated). */
function trustProxySetting(raw: string | undefined, problems: string[]): Config["trustProxy"] {
  const value = raw?.trim().toLowerCase();
  if (!value || ["false", "0", "no", "off"].includes(value)) return false;
  if (["true", "yes", "on"].includes(value)) return true;
  if (/^\d+$/.test(value)) return Number(value);
  const entries = list(raw);
  if (
    entries.every((e) => /^[0-9a-f.:]+(\/\d{1,3})?$/i.test(e) || ["loopback", "linklocal", "uniquelocal"].includes(e))
  )
    return entries;
  problems.push(`TRUST_PROXY must be false, true, a number of proxies, or their addresses/subnets (got "${raw}")`);
  return false;
}

function allowedOrigins(appUrl: URL, production: boolean): string[] {
  const origins = new Set([appUrl.origin]);
  if (!production && ["localhost", "127.0.0.1", "[::1]"].includes(appUrl.hostname)) {
    for (const alias of ["localhost", "127.0.0.1", "[::1]"]) {
      const u = new URL(appUrl.href);
      u.hostname = alias;
      origins.add(u.origin);
    }
  }
  return [...origins];
}
