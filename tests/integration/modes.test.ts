import { request } from "node:http";
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CookieJar } from "../support/cookie-jar";
import { browse, form, pathOf, requestLink, signIn } from "../support/flows";
import { TestSmtpServer } from "../support/smtp";
import { startNode, stopAllNodes, testSecret } from "../support/node";
import { waitFor } from "../support/wait";

afterAll(stopAllNodes);

describe("settings and modes", () => {
  it("refuses to start in production without its required settings, one clear line each", async () => {
    const node = await startNode({
      env: { NODE_ENV: "production", SECRET_KEY_BASE: undefined, APP_URL: undefined, SMTP_URL: undefined },
      waitUntil: "none",
    });
    expect(await node.waitForExit()).toBe(1);
    const lines = node.output.filter((l) => l.startsWith("config: "));
    expect(lines.some((l) => l.includes("SECRET_KEY_BASE is required"))).toBe(true);
    expect(lines.some((l) => l.includes("APP_URL is required"))).toBe(true);
    expect(lines.some((l) => l.includes("SMTP_URL is required"))).toBe(true);
    expect(node.log).not.toMatch(/\n\s+at /); // no stack trace
  });

  it("refuses malformed settings", async () => {
    const node = await startNode({
      env: { SECRET_KEY_BASE: "short", PORT: "seventy", CLUSTER_DISCOVERY: "carrier-pigeon" },
      waitUntil: "none",
    });
    expect(await node.waitForExit()).toBe(1);
    expect(node.log).toContain("config: SECRET_KEY_BASE must be at least 32 characters");
    expect(node.log).toContain("config: PORT must be a whole number");
    expect(node.log).toContain("config: CLUSTER_DISCOVERY must be local, none or mdns");
  });

  it("runs in local mode with no secret set: generates one (0600) and keeps mail in the outbox", async () => {
    const cwdData = path.resolve(".data/dev-secret");
    const existed = existsSync(cwdData);
    const node = await startNode({ env: { SECRET_KEY_BASE: undefined } });
    expect(existsSync(cwdData)).toBe(true);
    expect(statSync(cwdData).mode & 0o777).toBe(0o600);
    expect(readFileSync(cwdData, "utf8").trim().length).toBeGreaterThanOrEqual(32);
    expect(node.log).not.toContain(readFileSync(cwdData, "utf8").trim());
    expect(existed || node.log.includes('"secret":"generated"')).toBe(true);

    const jar = new CookieJar();
    const link = await requestLink(node, jar, "local@example.com");
    // the link is in the log for the developer, and in the mailbox page
    expect(node.log).toContain(link);
    const page = await (await node.fetch("/dev/mailbox")).text();
    expect(page).toContain("local@example.com");
    const json = (await (await node.fetch("/dev/mailbox.json")).json()) as {
      messages: { to: string; subject: string; text: string; html: string; sentAt: string }[];
    };
    expect(json.messages[0]).toMatchObject({ to: "local@example.com" });
    expect(Date.parse(json.messages[0]!.sentAt)).not.toBeNaN();
    expect((await browse(node, jar, pathOf(link), { method: "POST" })).status).toBe(302);

    // opened through another loopback name, a page moves to APP_URL's host (where the cookies are)
    const aliased = await fetch(`http://localhost:${node.port}/login?redirectTo=%2Faccount`, { redirect: "manual" });
    expect(aliased.status).toBe(302);
    expect(aliased.headers.get("location")).toBe(`${node.url}/login?redirectTo=%2Faccount`);
  });

  it("has no outbox in production even without SMTP traffic", async () => {
    const node = await startNode({ env: { NODE_ENV: "production", SMTP_URL: "smtp://127.0.0.1:9" } });
    expect((await node.fetch("/dev/mailbox")).status).toBe(404);
    expect((await node.fetch("/dev/mailbox.json")).status).toBe(404);
    // SMTP down: a clear page, not a crash
    const res = await browse(node, new CookieJar(), "/login", form({ email: "down@example.com" }));
    expect(res.status).toBe(503);
    expect(await res.text()).toContain("could not send the email");
    expect((await node.fetch("/healthz")).status).toBe(200);
    // the cluster pages are for ADMIN_EMAILS only in production
    const json = await node.fetch("/cluster.json");
    expect(json.status).toBe(401);
    expect(((await json.json()) as { error: string }).error).toBe("unauthorized");
    expect((await node.fetch("/cluster/tables/users.json")).status).toBe(401);
    const page = await node.fetch("/cluster");
    expect(page.status).toBe(302);
    expect(page.headers.get("location")).toContain("/login?redirectTo=%2Fcluster");
  });

  it("shows the cluster in production to ADMIN_EMAILS only", async () => {
    const smtp = await new TestSmtpServer().start();
    try {
      const node = await startNode({
        env: { NODE_ENV: "production", SMTP_URL: smtp.url, ADMIN_EMAILS: "Boss@Example.com" },
      });
      const boss = await signIn(node, "boss@example.com", smtp);
      expect((await browse(node, boss, "/cluster.json")).status).toBe(200);
      expect((await browse(node, boss, "/cluster")).status).toBe(200);
      const other = await signIn(node, "staff@example.com", smtp);
      const refused = await browse(node, other, "/cluster.json");
      expect(refused.status).toBe(403);
      expect(((await refused.json()) as { error: string }).error).toBe("forbidden");
      expect((await browse(node, other, "/cluster")).status).toBe(403);
    } finally {
      await smtp.stop();
    }
  });

  it("finishes in-flight work and exits cleanly on SIGTERM", async () => {
    const node = await startNode();
    expect((await node.fetch("/healthz")).status).toBe(200);
    // a request still uploading its body when SIGTERM arrives
    const inFlight = request(`${node.url}/auth/refresh`, {
      method: "POST",
      headers: { "Transfer-Encoding": "chunked" },
    });
    const answered = new Promise<number>((resolve, reject) => {
      inFlight.on("response", (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      inFlight.on("error", reject);
    });
    await new Promise((resolve) => inFlight.write("x=", resolve));
    const exited = node.stop("SIGTERM");
    await waitFor("the shutdown to begin", () => node.log.includes("shutting down"));
    // no new connections…
    await expect(fetch(`${node.url}/healthz`)).rejects.toThrow();
    // …but the open request is finished and answered
    inFlight.end("1");
    expect(await answered).toBe(401);
    expect(await exited).toBe(0);
    expect(node.log).toContain("shutting down");
    expect(node.log).toContain('"msg":"stopped"');
  });

  it("accepts cookies and tokens made with SECRET_KEY_BASE_PREVIOUS after a restart with a new secret", async () => {
    // one data dir and cluster across a rotation: a peer keeps the tables while the rotated node restarts
    const oldSecret = testSecret();
    const clusterSecret = testSecret();
    const registry = mkdtempSync(path.join(tmpdir(), "pwdless-reg-"));
    const cluster = {
      CLUSTER_SECRET: clusterSecret,
      CLUSTER_DISCOVERY: "local",
      CLUSTER_REGISTRY_DIR: registry,
      CLUSTER_NAME: `rot-${Date.now()}`,
    };
    const keeper = await startNode({ env: { ...cluster, SECRET_KEY_BASE: oldSecret } });
    const jar = new CookieJar();
    const link = await requestLink(keeper, jar, "rotate@example.com");
    expect((await browse(keeper, jar, pathOf(link), { method: "POST" })).status).toBe(302);
    const token = (
      (await (await browse(keeper, jar, "/auth/refresh", { method: "POST" })).json()) as { access_token: string }
    ).access_token;

    const rotated = await startNode({
      env: { ...cluster, SECRET_KEY_BASE: testSecret(), SECRET_KEY_BASE_PREVIOUS: oldSecret },
    });
    await waitFor("the rotated node to catch up", async () => (await rotated.fetch("/readyz")).status === 200, 20_000);
    const me = await rotated.fetch("/api/me", { headers: { Authorization: `Bearer ${token}` } });
    expect(me.status).toBe(200);
    const refreshed = await browse(rotated, jar, "/auth/refresh", { method: "POST" });
    expect(refreshed.status).toBe(200);

    // a node that never knew the old secret refuses both
    const stranger = await startNode({ env: { ...cluster, SECRET_KEY_BASE: testSecret() } });
    await waitFor("the stranger to catch up", async () => (await stranger.fetch("/readyz")).status === 200, 20_000);
    expect((await stranger.fetch("/api/me", { headers: { Authorization: `Bearer ${token}` } })).status).toBe(401);
    expect((await browse(stranger, jar.clone(), "/auth/refresh", { method: "POST" })).status).toBe(401);
    writeFileSync(path.join(registry, ".done"), "");
  });
});
