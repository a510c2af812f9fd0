import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../server/config";

const cwd = mkdtempSync(path.join(tmpdir(), "config-safety-"));
const secret = "s".repeat(40);
const production = {
  NODE_ENV: "production",
  SECRET_KEY_BASE: secret,
  APP_URL: "https://login.example.com",
  SMTP_URL: "smtp://mail.example.com:587",
};

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env, cwd);
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
}

describe("safe defaults when misconfigured", () => {
  it("refuses local mode with a public APP_URL or HOST, in one line naming NODE_ENV=production", () => {
    const envs: Record<string, string>[] = [
      { APP_URL: "https://login.example.com" },
      { HOST: "0.0.0.0" },
      { HOST: "10.0.0.5" },
    ];
    for (const env of envs) {
      const found = problems({ SECRET_KEY_BASE: secret, ...env });
      expect(found).toHaveLength(1);
      expect(found[0]).toMatch(/local mode is for this machine only.*NODE_ENV=production/);
    }
  });

  it("accepts every loopback spelling in local mode, with the Dev OIDC provider and open cluster views", () => {
    for (const appUrl of [
      "http://localhost:3000",
      "http://127.0.0.1:3000",
      "http://[::1]:3000",
      "http://127.0.0.2:3000",
    ]) {
      const config = loadConfig({ SECRET_KEY_BASE: secret, APP_URL: appUrl }, cwd);
      expect(config.loopback).toBe(true);
      expect(config.oauth.dev).toBeDefined();
    }
  });

  it("the staging override needs SMTP and never runs the Dev OIDC provider", () => {
    const base = {
      SECRET_KEY_BASE: secret,
      APP_URL: "https://staging.example.com",
      ALLOW_NON_LOOPBACK_LOCAL_MODE: "true",
    };
    expect(problems(base).join("\n")).toContain("ALLOW_NON_LOOPBACK_LOCAL_MODE needs SMTP_URL");
    const config = loadConfig({ ...base, SMTP_URL: "smtp://mail.example.com" }, cwd);
    expect(config).toMatchObject({ mode: "local", loopback: false, offLoopbackOverride: true });
    expect(config.oauth.dev).toBeUndefined();
    expect(problems({ ...base, SMTP_URL: "smtp://mail.example.com", DEV_OIDC: "true" })).toEqual([
      expect.stringContaining("DEV_OIDC needs a loopback APP_URL"),
    ]);
  });

  it("listens for the cluster on all interfaces in production only when members are elsewhere", () => {
    expect(loadConfig(production, cwd).cluster.host).toBe("127.0.0.1");
    expect(loadConfig({ ...production, CLUSTER_PEERS: "10.0.0.11:4100" }, cwd).cluster.host).toBe("0.0.0.0");
    expect(loadConfig({ ...production, CLUSTER_DNS: "pwdless.svc:4100" }, cwd).cluster.host).toBe("0.0.0.0");
    expect(loadConfig({ ...production, CLUSTER_HOST: "10.0.0.5" }, cwd).cluster.host).toBe("10.0.0.5");
    expect(loadConfig({ SECRET_KEY_BASE: secret, CLUSTER_PEERS: "127.0.0.1:4100" }, cwd).cluster.host).toBe(
      "127.0.0.1",
    );
  });

  it("reads REFRESH_REUSE_GRACE_SECONDS (default 30) and the per-address total (default 20)", () => {
    const config = loadConfig({ SECRET_KEY_BASE: secret }, cwd);
    expect(config.refreshReuseGraceSeconds).toBe(30);
    expect(config.rateLimits).toMatchObject({ emailsPerAddress: 3, emailsPerAddressTotal: 20 });
    expect(
      loadConfig({ SECRET_KEY_BASE: secret, REFRESH_REUSE_GRACE_SECONDS: "5" }, cwd).refreshReuseGraceSeconds,
    ).toBe(5);
    expect(problems({ SECRET_KEY_BASE: secret, REFRESH_REUSE_GRACE_SECONDS: "-1" })[0]).toContain(
      "REFRESH_REUSE_GRACE_SECONDS must be a whole number",
    );
  });
});
