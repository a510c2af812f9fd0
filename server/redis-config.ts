/**
 * Redis mode's settings, read once with every problem listed: REDIS_URL (one server), or
 * REDIS_SENTINELS + REDIS_SENTINEL_NAME (a primary found through Sentinel), or
 * REDIS_CLUSTER_NODES (a Redis Cluster); REDIS_TIMEOUT_MS and REDIS_WAIT_REPLICAS for all three.
 */
import type { RedisAddress, RedisSettings } from "#cluster";

type Env = Record<string, string | undefined>;

function list(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean);
}

function whole(env: Env, name: string, fallback: number, min: number, max: number, problems: string[]): number {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    problems.push(`${name} must be a whole number from ${min} to ${max} (got "${raw}")`);
    return fallback;
  }
  return value;
}

/** `host:port` entries (IPv6 in brackets), each checked. */
function addresses(env: Env, name: string, defaultPort: number, problems: string[]): RedisAddress[] {
  const out: RedisAddress[] = [];
  for (const entry of list(env[name])) {
    const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s/]+))(?::(\d{1,5}))?$/.exec(entry);
    const port = match?.[3] === undefined ? defaultPort : Number(match[3]);
    if (!match || port < 1 || port > 65535) {
      problems.push(`${name} takes host:port entries separated by commas (got "${entry}")`);
      continue;
    }
    out.push({ host: match[1] ?? match[2]!, port });
  }
  return out;
}

function waitReplicas(env: Env, problems: string[]): "auto" | number {
  const raw = env.REDIS_WAIT_REPLICAS?.trim().toLowerCase();
  if (!raw || raw === "auto") return "auto";
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0 || value > 16) {
    problems.push(`REDIS_WAIT_REPLICAS must be auto or a whole number from 0 to 16 (got "${env.REDIS_WAIT_REPLICAS}")`);
    return "auto";
  }
  return value;
}

function tls(env: Env, problems: string[]): boolean | undefined {
  const raw = env.REDIS_TLS?.trim().toLowerCase();
  if (!raw) return undefined;
  if (["1", "true", "yes", "on"].includes(raw)) return true;
  if (["0", "false", "no", "off"].includes(raw)) return undefined;
  problems.push(`REDIS_TLS must be true or false (got "${env.REDIS_TLS}")`);
  return undefined;
}

/** Undefined (gossip mode) when none of REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES is set. */
export function redisSettings(env: Env, problems: string[]): RedisSettings | undefined {
  const timeoutMs = whole(env, "REDIS_TIMEOUT_MS", 2_000, 50, 60_000, problems);
  const wait = waitReplicas(env, problems);
  const raw = env.REDIS_URL?.trim();
  const sentinels = env.REDIS_SENTINELS?.trim();
  const clusterNodes = env.REDIS_CLUSTER_NODES?.trim();
  const chosen = [raw && "REDIS_URL", sentinels && "REDIS_SENTINELS", clusterNodes && "REDIS_CLUSTER_NODES"].filter(
    (name): name is string => Boolean(name),
  );
  if (chosen.length === 0) {
    if (env.REDIS_SENTINEL_NAME?.trim())
      problems.push("REDIS_SENTINEL_NAME needs REDIS_SENTINELS (the sentinels' host:port)");
    return undefined;
  }
  if (chosen.length > 1) {
    problems.push(`set one of REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES (got ${chosen.join(" and ")})`);
    return undefined;
  }
  const before = problems.length;
  const credentials = {
    ...(env.REDIS_USERNAME?.trim() ? { username: env.REDIS_USERNAME.trim() } : {}),
    ...(env.REDIS_PASSWORD ? { password: env.REDIS_PASSWORD } : {}),
    ...(tls(env, problems) ? { tls: true } : {}),
  };
  if (sentinels) {
    const nodes = addresses(env, "REDIS_SENTINELS", 26379, problems);
    const name = env.REDIS_SENTINEL_NAME?.trim();
    if (!name)
      problems.push("REDIS_SENTINELS needs REDIS_SENTINEL_NAME: the primary's name in `sentinel monitor <name> …`");
    const database = whole(env, "REDIS_DATABASE", 0, 0, 65535, problems);
    if (problems.length > before || !name) return undefined;
    return {
      mode: "sentinel",
      sentinels: nodes,
      sentinelName: name,
      ...(env.REDIS_SENTINEL_PASSWORD ? { sentinelPassword: env.REDIS_SENTINEL_PASSWORD } : {}),
      ...(database ? { database } : {}),
      ...credentials,
      timeoutMs,
      waitReplicas: wait,
    };
  }
  if (clusterNodes) {
    const nodes = addresses(env, "REDIS_CLUSTER_NODES", 6379, problems);
    if (env.REDIS_DATABASE?.trim() && env.REDIS_DATABASE.trim() !== "0") {
      problems.push("REDIS_DATABASE: a Redis Cluster has database 0 only");
    }
    if (problems.length > before) return undefined;
    return { mode: "cluster", nodes, ...credentials, timeoutMs, waitReplicas: wait };
  }
  for (const name of ["REDIS_USERNAME", "REDIS_PASSWORD", "REDIS_TLS", "REDIS_DATABASE"]) {
    if (env[name]?.trim()) problems.push(`${name} is for REDIS_SENTINELS or REDIS_CLUSTER_NODES: put it in REDIS_URL`);
  }
  let url: URL;
  try {
    url = new URL(raw!);
  } catch {
    problems.push("REDIS_URL must look like redis://[:password@]host[:port][/db] or rediss://… (it is not a URL)");
    return undefined;
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
    problems.push(`REDIS_URL must start with redis:// or rediss:// (got ${url.protocol}//)`);
  }
  if (!url.hostname) problems.push("REDIS_URL has no host: redis://host:6379");
  if (url.port && (Number(url.port) < 1 || Number(url.port) > 65535)) problems.push("REDIS_URL has an invalid port");
  const db = url.pathname.replace(/^\//, "");
  if (db !== "" && !/^\d{1,5}$/.test(db)) {
    problems.push(`REDIS_URL's path is the database number, a whole number such as /0 (got "/${db}")`);
  }
  if (url.search || url.hash)
    problems.push("REDIS_URL takes no query or fragment: put the database number in the path");
  if (problems.length > before) return undefined;
  return { url: url.toString(), timeoutMs, waitReplicas: wait };
}
