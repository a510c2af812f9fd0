/** REDIS_URL and REDIS_TIMEOUT_MS as server/config.ts reads them: one line per problem. */
import { describe, expect, it } from "vitest";
import { redisSettings } from "../../server/config";
import { describeRedisError, redactRedisUrl } from "../../cluster/redis/errors";

function read(env: Record<string, string>) {
  const problems: string[] = [];
  return { settings: redisSettings(env, problems), problems };
}

describe("REDIS_URL", () => {
  it("is optional: unset means gossip mode", () => {
    expect(read({})).toEqual({ settings: undefined, problems: [] });
  });

  it("takes redis:// and rediss://, a password and a database number", () => {
    expect(read({ REDIS_URL: "redis://127.0.0.1:6379" }).settings).toEqual({
      url: "redis://127.0.0.1:6379",
      timeoutMs: 2000,
    });
    const tls = read({ REDIS_URL: "rediss://user:s%3Acret@redis.example.com:6380/3", REDIS_TIMEOUT_MS: "500" });
    expect(tls.problems).toEqual([]);
    expect(tls.settings).toEqual({ url: "rediss://user:s%3Acret@redis.example.com:6380/3", timeoutMs: 500 });
  });

  it("lists every problem, one line each, without echoing a password", () => {
    const { settings, problems } = read({ REDIS_URL: "http://:secret@host/db?x=1", REDIS_TIMEOUT_MS: "0" });
    expect(settings).toBeUndefined();
    expect(problems).toEqual([
      'REDIS_TIMEOUT_MS must be a whole number from 50 to 60000 (got "0")',
      "REDIS_URL must start with redis:// or rediss:// (got http://)",
      'REDIS_URL\'s path is the database number, a whole number such as /0 (got "/db")',
      "REDIS_URL takes no query or fragment: put the database number in the path",
    ]);
    expect(problems.join("\n")).not.toContain("secret");
    expect(read({ REDIS_URL: "not a url" }).problems).toHaveLength(1);
  });

  it("is logged without its password, and Redis errors are said in one line", () => {
    expect(redactRedisUrl("redis://:hunter2@10.0.0.5:6379/1")).toBe("redis://:***@10.0.0.5:6379/1");
    const url = "redis://:hunter2@10.0.0.5:6379";
    expect(describeRedisError(new Error("WRONGPASS invalid username-password pair"), url)).toBe(
      "Redis at 10.0.0.5:6379 refused the password in REDIS_URL (WRONGPASS invalid username-password pair)",
    );
    expect(describeRedisError(Object.assign(new Error("getaddrinfo ENOTFOUND x"), { code: "ENOTFOUND" }), url)).toBe(
      "unknown Redis host in REDIS_URL: 10.0.0.5:6379 does not resolve",
    );
    expect(describeRedisError(new Error("connect ECONNREFUSED 10.0.0.5:6379"), url)).not.toContain("hunter2");
  });
});
