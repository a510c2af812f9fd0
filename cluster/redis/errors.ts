/** Redis mode's start-up failure, and Redis errors said in one line an operator can act on. */

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

/** One line saying what went wrong, never the password. */
export function describeRedisError(error: unknown, url: string): string {
  const original = (error as { originalError?: unknown } | undefined)?.originalError ?? error;
  const message = original instanceof Error ? original.message : String(original);
  const code = (original as { code?: string } | undefined)?.code;
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
