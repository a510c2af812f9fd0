/** Redis mode's start-up failure, and Redis errors said in one line an operator can act on. */
import type { RedisSettings } from "../types";
import { describeTarget } from "./connection";

/** The node could not reach Redis at start: server/ prints the message as one line and exits 1. */
export class RedisStartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RedisStartError";
  }
}

/** The URL as it may be logged: the password replaced. */
export function redactRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(unparsable REDIS_URL)";
  }
}

/** One line saying what went wrong, never the password: `target` is REDIS_URL or the settings. */
export function describeRedisError(error: unknown, target: string | RedisSettings): string {
  const original = (error as { originalError?: unknown; cause?: unknown } | undefined)?.originalError ?? error;
  const message = original instanceof Error ? original.message : String(original);
  const code = (original as { code?: string } | undefined)?.code;
  const settings: RedisSettings = typeof target === "string" ? { url: target, timeoutMs: 0 } : target;
  if (settings.mode === "sentinel" || settings.mode === "cluster") {
    const where = describeTarget(settings);
    const list = settings.mode === "sentinel" ? "REDIS_SENTINELS" : "REDIS_CLUSTER_NODES";
    if (/WRONGPASS|invalid password|invalid username-password/i.test(message)) {
      return `${where} refused the user or password in REDIS_USERNAME / REDIS_PASSWORD${settings.mode === "sentinel" ? " (or REDIS_SENTINEL_PASSWORD)" : ""} (${message.split("\n")[0]})`;
    }
    if (/NOAUTH/.test(message)) return `${where} requires a password: set REDIS_PASSWORD`;
    if (code === "ENOTFOUND" || code === "EAI_AGAIN" || /ENOTFOUND|EAI_AGAIN/.test(message)) {
      return `unknown host in ${list}: ${where} does not resolve`;
    }
    if (code === "ECONNREFUSED" || /ECONNREFUSED/.test(message))
      return `nothing accepts connections at ${where} (${list})`;
    return `${where}: ${message.split("\n")[0]}`;
  }
  const url = settings.url;
  const where = redactRedisUrl(url);
  let host = where;
  try {
    const parsed = new URL(url);
    host = `${parsed.hostname}:${parsed.port || "6379"}`;
  } catch {
    // keep the redacted URL
  }
  if (/WRONGPASS|invalid password|invalid username-password/i.test(message)) {
    return `Redis at ${host} refused the password in REDIS_URL (${message.split("\n")[0]})`;
  }
  if (/NOAUTH/.test(message))
    return `Redis at ${host} requires a password: put it in REDIS_URL (redis://:password@host)`;
  if (code === "ENOTFOUND" || code === "EAI_AGAIN" || /ENOTFOUND|EAI_AGAIN/.test(message)) {
    return `unknown Redis host in REDIS_URL: ${host} does not resolve`;
  }
  if (code === "ECONNREFUSED" || /ECONNREFUSED/.test(message))
    return `nothing accepts connections at ${host} (REDIS_URL)`;
  if (/ERR DB index is out of range|invalid DB index/i.test(message)) {
    return `Redis at ${host} has no such database number (REDIS_URL ${where})`;
  }
  return `Redis at ${host}: ${message.split("\n")[0]}`;
}

/** The ACL line an operator can paste, for the commands the node found it may not run. */
export const REQUIRED_ACL =
  "~pwdless-gs:* &pwdless-gs:* +@read +@write +@scripting +@pubsub +@connection -@dangerous +info +time +cluster|slots";

/** One line for a Redis user that lacks permissions the node needs (checked at start). */
export function describeMissingPermissions(denied: string[], where: string): string {
  const names = [...new Set(denied.map((command) => command.toUpperCase()))];
  const scripting = names.some((n) => n === "EVAL" || n === "EVALSHA") ? " (+@scripting)" : "";
  return `the Redis user at ${where} may not run ${names.join(", ")}${scripting}: grant it ${REQUIRED_ACL} (see README, Redis mode)`;
}
