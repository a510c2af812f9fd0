/**
 * Redis mode's settings as server/config.ts reads them (REDIS_URL, REDIS_SENTINELS,
 * REDIS_CLUSTER_NODES, REDIS_WAIT_REPLICAS, REDIS_TIMEOUT_MS): one line per problem.
 */
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
      waitReplicas: "auto",
    });
    const tls = read({ REDIS_URL: "rediss://user:s%3Acret@redis.example.com:6380/3", REDIS_TIMEOUT_MS: "500" });
    expect(tls.problems).toEqual([]);
    expect(tls.settings).toEqual({
      url: "rediss://user:s%3Acret@redis.example.com:6380/3",
      timeoutMs: 500,
      waitReplicas: "auto",
    });
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

describe("REDIS_SENTINELS and REDIS_CLUSTER_NODES", () => {
  it("read Sentinel's addresses, the primary's name and the credentials", () => {
    const { settings, problems } = read({
      REDIS_SENTINELS: "10.0.0.5:26379, sentinel-b, [::1]:26380",
      REDIS_SENTINEL_NAME: "mymaster",
      REDIS_PASSWORD: "s3cret",
      REDIS_SENTINEL_PASSWORD: "other",
      REDIS_WAIT_REPLICAS: "1",
      REDIS_DATABASE: "2",
    });
    expect(problems).toEqual([]);
    expect(settings).toEqual({
      mode: "sentinel",
      sentinels: [
        { host: "10.0.0.5", port: 26379 },
        { host: "sentinel-b", port: 26379 },
        { host: "::1", port: 26380 },
      ],
      sentinelName: "mymaster",
      sentinelPassword: "other",
      database: 2,
      password: "s3cret",
      timeoutMs: 2000,
      waitReplicas: 1,
    });
  });

  it("read a Redis Cluster's seed nodes", () => {
    expect(read({ REDIS_CLUSTER_NODES: "10.0.0.5:7000,10.0.0.6:7001", REDIS_TLS: "true" }).settings).toEqual({
      mode: "cluster",
      nodes: [
        { host: "10.0.0.5", port: 7000 },
        { host: "10.0.0.6", port: 7001 },
      ],
      tls: true,
      timeoutMs: 2000,
      waitReplicas: "auto",
    });
  });

  it("list every problem: two modes at once, a missing name, bad entries, a bad WAIT count", () => {
    expect(read({ REDIS_URL: "redis://x", REDIS_CLUSTER_NODES: "x:1" }).problems).toEqual([
      "set one of REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES (got REDIS_URL and REDIS_CLUSTER_NODES)",
    ]);
    expect(read({ REDIS_SENTINELS: "a:1,b:99999" }).problems).toEqual([
      'REDIS_SENTINELS takes host:port entries separated by commas (got "b:99999")',
      "REDIS_SENTINELS needs REDIS_SENTINEL_NAME: the primary's name in `sentinel monitor <name> …`",
    ]);
    expect(read({ REDIS_SENTINEL_NAME: "m" }).problems).toEqual([
      "REDIS_SENTINEL_NAME needs REDIS_SENTINELS (the sentinels' host:port)",
    ]);
    expect(read({ REDIS_URL: "redis://x", REDIS_WAIT_REPLICAS: "some", REDIS_PASSWORD: "p" }).problems).toEqual([
      'REDIS_WAIT_REPLICAS must be auto or a whole number from 0 to 16 (got "some")',
      "REDIS_PASSWORD is for REDIS_SENTINELS or REDIS_CLUSTER_NODES: put it in REDIS_URL",
    ]);
  });

  it("describe Sentinel and Cluster errors in one line, without the password", () => {
    const sentinel = {
      mode: "sentinel" as const,
      sentinels: [{ host: "10.0.0.5", port: 26379 }],
      sentinelName: "mymaster",
      password: "hunter2",
      timeoutMs: 1000,
    };
    expect(describeRedisError(new Error("connect ECONNREFUSED 10.0.0.5:26379"), sentinel)).toBe(
      'nothing accepts connections at Sentinel "mymaster" at 10.0.0.5:26379 (REDIS_SENTINELS)',
    );
    const cluster = { mode: "cluster" as const, nodes: [{ host: "10.0.0.6", port: 7000 }], timeoutMs: 1000 };
    expect(describeRedisError(new Error("WRONGPASS invalid username-password pair"), cluster)).toBe(
      "Redis Cluster at 10.0.0.6:7000 refused the user or password in REDIS_USERNAME / REDIS_PASSWORD (WRONGPASS invalid username-password pair)",
    );
    expect(describeRedisError(new Error("WRONGPASS x"), sentinel)).not.toContain("hunter2");
  });
});
