import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { z } from "zod";

/** Everything the process needs, read once from the environment and validated. */
export interface Config {
  mode: "local" | "production";
  port: number;
  host: string;
  appUrl: URL;
  /** origins accepted for form posts: APP_URL's, plus its loopback aliases in local mode */
  allowedOrigins: string[];
  secretKeyBase: string;
  secretKeyBasePrevious: string[];
  /** where the local-mode secret came from, for the start-up log line (never the secret) */
  secretSource: "env" | "generated" | "dev-secret-file";
  dataDir: string;
  smtpUrl: string | undefined;
  mailFrom: string;
  linkTtlMs: number;
  linkSameBrowser: boolean;
  accessTokenTtlSeconds: number;
  sessionTtlDays: number;
  bodyLimitBytes: number;
  adminEmails: string[];
  cluster: {
    name: string;
    secret: string | undefined;
    host: string;
    port: number;
    peers: string[];
    dns: string | undefined;
    discovery: "local" | "none" | "mdns";
    registryDir: string | undefined;
  };
}

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
    problems.push(`SECRET_KEY_BASE must be at least ${MIN_SECRET_LENGTH} characters of random data: \`npm run gen:secret\` prints one`);
  }
  const secretKeyBasePrevious = list(env.SECRET_KEY_BASE_PREVIOUS);
  if (secretKeyBasePrevious.some((s) => s.length < MIN_SECRET_LENGTH)) {
    problems.push(`SECRET_KEY_BASE_PREVIOUS: each comma-separated value must be at least ${MIN_SECRET_LENGTH} characters`);
  }

  const smtpUrl = env.SMTP_URL?.trim() || undefined;
  if (smtpUrl && !/^smtps?:\/\/.+/.test(smtpUrl)) {
    problems.push("SMTP_URL must look like smtp://user:pass@host:587 or smtps://host:465");
  }
  if (!smtpUrl && production) problems.push("SMTP_URL is required in production: e.g. smtp://user:pass@smtp.example.com:587");

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

  const config: Config = {
    mode,
    port,
    host,
    appUrl,
    allowedOrigins: allowedOrigins(appUrl, production),
    secretKeyBase,
    secretKeyBasePrevious,
    secretSource,
    dataDir: path.resolve(cwd, env.DATA_DIR?.trim() || path.join(".data", `node-${port}`)),
    smtpUrl,
    mailFrom: env.MAIL_FROM?.trim() || `PwdlessGs <no-reply@${appUrl.hostname}>`,
    linkTtlMs: intSetting(env, "LINK_TTL_MINUTES", 15, 1, 24 * 60, problems) * 60_000,
    linkSameBrowser: boolSetting(env, "LINK_SAME_BROWSER", true, problems),
    accessTokenTtlSeconds: intSetting(env, "ACCESS_TOKEN_TTL_SECONDS", 900, 1, 24 * 3600, problems),
    sessionTtlDays: intSetting(env, "SESSION_TTL_DAYS", 30, 1, 365, problems),
    bodyLimitBytes: 64 * 1024,
    adminEmails: list(env.ADMIN_EMAILS).map((e) => e.toLowerCase()),
    cluster: {
      name: clusterName,
      secret: clusterSecret,
      host: env.CLUSTER_HOST?.trim() || (production ? "0.0.0.0" : "127.0.0.1"),
      port: intSetting(env, "CLUSTER_PORT", 0, 0, 65535, problems),
      peers: list(env.CLUSTER_PEERS),
      dns: env.CLUSTER_DNS?.trim() || undefined,
      discovery: discovery as Config["cluster"]["discovery"],
      registryDir: env.CLUSTER_REGISTRY_DIR?.trim() || undefined,
    },
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
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
