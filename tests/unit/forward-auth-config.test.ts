import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../server/config";

const cwd = mkdtempSync(path.join(tmpdir(), "forward-auth-config-"));
const production = {
  NODE_ENV: "production",
  SECRET_KEY_BASE: "s".repeat(40),
  APP_URL: "https://login.example.com",
  SMTP_URL: "smtp://mail.example.com:587",
};

function load(env: Record<string, string>) {
  try {
    return { config: loadConfig({ ...production, ...env }, cwd), problems: [] as string[] };
  } catch (error) {
    if (error instanceof ConfigError) return { config: undefined, problems: error.problems };
    throw error;
  }
}

describe("COOKIE_DOMAIN", () => {
  it("is unset by default: the session cookie stays host-only", () => {
    expect(load({}).config!.cookieDomain).toBeUndefined();
  });

  it.each([".example.com", "example.com", "EXAMPLE.com", "login.example.com"])(
    "accepts %j, a parent of APP_URL's host",
    (value) => {
      expect(load({ COOKIE_DOMAIN: value }).config!.cookieDomain).toBe(value.replace(/^\./, "").toLowerCase());
    },
  );

  it.each([
    [".other.com", /must be APP_URL's host or a parent of it/],
    ["ample.com", /must be APP_URL's host or a parent of it/],
    ["sub.login.example.com", /must be APP_URL's host or a parent of it/],
    ["com", /two labels or more/],
    [".", /two labels or more/],
    ["127.0.0.1", /two labels or more/],
    ["exa mple.com", /two labels or more/],
  ])("refuses %j, saying why", (value, why) => {
    const { problems } = load({ COOKIE_DOMAIN: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^COOKIE_DOMAIN/);
    expect(problems[0]).toMatch(why);
  });
});

describe("FORWARD_AUTH_HOSTS", () => {
  it("accepts hosts the session cookie reaches: APP_URL's host, or within COOKIE_DOMAIN", () => {
    const { config } = load({
      COOKIE_DOMAIN: ".example.com",
      FORWARD_AUTH_HOSTS: "grafana.example.com, *.apps.example.com,wiki.example.com:8443,login.example.com",
    });
    expect(config!.forwardAuthHosts).toEqual([
      "grafana.example.com",
      "*.apps.example.com",
      "wiki.example.com:8443",
      "login.example.com",
    ]);
    expect(load({}).config!.forwardAuthHosts).toEqual([]);
  });

  it("lists every problem at once: malformed entries, and hosts the cookie would never reach", () => {
    const { problems } = load({
      FORWARD_AUTH_HOSTS: "grafana.example.com,*.com,bad host,app.example.com:99999,login.example.com,*.example.com",
    });
    expect(problems).toEqual([
      expect.stringMatching(/grafana\.example\.com is neither APP_URL's host .* nor within COOKIE_DOMAIN \(unset\)/),
      expect.stringMatching(/"\*\.com" is not a host/),
      expect.stringMatching(/"bad host" is not a host/),
      expect.stringMatching(/"app\.example\.com:99999" is not a host/),
      expect.stringMatching(/\*\.example\.com is neither APP_URL's host/),
    ]);
  });

  it("works in local mode beside a loopback APP_URL: a proxy on another port of the same host", () => {
    const config = loadConfig(
      { SECRET_KEY_BASE: "s".repeat(40), APP_URL: "http://127.0.0.1:3000", FORWARD_AUTH_HOSTS: "127.0.0.1:8080" },
      cwd,
    );
    expect(config.forwardAuthHosts).toEqual(["127.0.0.1:8080"]);
  });
});
