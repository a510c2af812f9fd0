import { afterAll, describe, expect, it } from "vitest";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { ServerBuild } from "@remix-run/node";
import { RouteLabels } from "../../server/route-labels";
import { clusterEnv, startClusterNodes, waitForMesh } from "../support/cluster";
import { CookieJar } from "../support/cookie-jar";
import { accessToken, browse, signIn } from "../support/flows";
import { ROOT, startNode, stopAllNodes, testSecret, type NodeProcess } from "../support/node";
import { TestSmtpServer } from "../support/smtp";
import { waitFor } from "../support/wait";

afterAll(stopAllNodes);

/** One sample's value from a Prometheus text answer, or undefined when the series is absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries(
      [...(match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
    );
    if (Object.entries(labels).every(([k, v]) => found[k] === v)) return Number(match[3]);
  }
  return undefined;
}

async function scrape(node: NodeProcess, init: RequestInit = {}): Promise<string> {
  const res = await node.fetch("/metrics", init);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toContain("text/plain");
  return res.text();
}

describe("/metrics", () => {
  it("shows an operator requests by route and status, sign-ins by method, tables, event loop and heap (local mode: open)", async () => {
    const smtp = await new TestSmtpServer().start();
    try {
      const node = await startNode({ env: { SMTP_URL: smtp.url } });
      const jar = await signIn(node, "metrics@example.com", smtp);
      const token = await accessToken(node, jar);
      for (let i = 0; i < 3; i++) {
        expect((await node.fetch("/api/me", { headers: { Authorization: `Bearer ${token}` } })).status).toBe(200);
      }
      expect((await node.fetch("/api/me")).status).toBe(401);
      expect((await node.fetch("/no/such/page/12345")).status).toBe(404);
      // routes added to the app are labelled by their Remix route id, with no list to keep up to date
      expect((await node.fetch("/examples/welcome")).status).toBe(200);
      expect((await node.fetch("/examples/private")).status).toBe(302);
      expect((await node.fetch("/api/examples/whoami")).status).toBe(401);
      expect((await node.fetch("/favicon.svg")).status).toBe(200);

      // alone, with no peer to catch up from: ready after the discovery window
      await waitFor("the lone node to be ready", async () => (await node.fetch("/readyz")).status === 200);
      const text = await scrape(node);
      const meOk = { method: "GET", route: "routes/api.me", status: "200" };
      expect(sample(text, "pwdless_http_request_duration_seconds_count", meOk)).toBe(3);
      expect(sample(text, "pwdless_http_request_duration_seconds_bucket", { ...meOk, le: "+Inf" })).toBe(3);
      expect(
        sample(text, "pwdless_http_request_duration_seconds_count", { route: "routes/api.me", status: "401" }),
      ).toBe(1);
      expect(sample(text, "pwdless_http_request_duration_seconds_count", { route: "routes/auth.refresh" })).toBe(1);
      // unknown paths share one label: a scan of random URLs cannot grow the series
      expect(sample(text, "pwdless_http_request_duration_seconds_count", { route: "other", status: "404" })).toBe(1);
      expect(text).not.toContain("12345");
      const count = (route: string, status: string) =>
        sample(text, "pwdless_http_request_duration_seconds_count", { route, status });
      expect(count("routes/examples.welcome", "200")).toBe(1);
      expect(count("routes/examples.private", "302")).toBe(1);
      expect(count("routes/api.examples.whoami", "401")).toBe(1);
      expect(count("routes/login", "200")).toBeUndefined(); // never asked for
      expect(count("static", "200")).toBe(1);
      expect(count("/healthz", "200")).toBeGreaterThanOrEqual(1);
      expect(sample(text, "pwdless_sign_ins_total", { method: "email" })).toBe(1);
      expect(sample(text, "pwdless_audit_events_total", { event: "link-sent" })).toBe(1);
      expect(sample(text, "pwdless_cluster_table_rows", { table: "users" })).toBe(1);
      expect(sample(text, "pwdless_cluster_table_rows", { table: "sessions" })).toBe(1);
      expect(sample(text, "pwdless_cluster_ready")).toBe(1);
      expect(sample(text, "nodejs_eventloop_lag_p99_seconds")).toBeGreaterThanOrEqual(0);
      expect(sample(text, "nodejs_heap_size_used_bytes")).toBeGreaterThan(1_000_000);
      expect(sample(text, "pwdless_cluster_gossip_messages_total", { direction: "out" })).toBeGreaterThanOrEqual(0);
    } finally {
      await smtp.stop();
    }
  });

  it("shows gossip in, catch-up and replication lag on a node that receives another's writes", async () => {
    const [a, b] = await startClusterNodes(2, clusterEnv());
    await waitForMesh([a!, b!]);
    await signIn(a!, "replicated@example.com");
    const text = await waitFor("b to count a's gossip, its lag and the replicated user", async () => {
      const t = await scrape(b!);
      const arrived =
        (sample(t, "pwdless_cluster_gossip_messages_total", { direction: "in" }) ?? 0) > 0 &&
        sample(t, "pwdless_cluster_replication_lag_seconds", { stat: "max" }) !== undefined &&
        sample(t, "pwdless_cluster_table_rows", { table: "users" }) === 1;
      return arrived ? t : undefined;
    });
    expect(sample(text, "pwdless_cluster_ready")).toBe(1);
    expect(sample(text, "pwdless_cluster_peers")).toBe(1);
    expect(sample(text, "pwdless_cluster_catchups_total", { result: "ok" })).toBeGreaterThanOrEqual(1);
    expect(sample(text, "pwdless_cluster_catchup_records_total")).toBeGreaterThanOrEqual(0);
    expect(sample(text, "pwdless_cluster_replication_lag_seconds", { stat: "max" })).toBeGreaterThanOrEqual(0);
  });

  it("in production, answers only METRICS_TOKEN or an ADMIN_EMAILS session", async () => {
    const smtp = await new TestSmtpServer().start();
    const metricsToken = testSecret();
    try {
      const node = await startNode({
        env: {
          NODE_ENV: "production",
          SMTP_URL: smtp.url,
          ADMIN_EMAILS: "ops@example.com",
          METRICS_TOKEN: metricsToken,
        },
      });
      const anonymous = await node.fetch("/metrics");
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get("www-authenticate")).toContain("Bearer");
      expect(await anonymous.json()).toMatchObject({ error: "unauthorized" });

      const wrong = await node.fetch("/metrics", {
        headers: { Authorization: `Bearer ${metricsToken.slice(0, -1)}x` },
      });
      expect(wrong.status).toBe(403);
      expect(await wrong.json()).toMatchObject({ error: "forbidden" });

      const text = await scrape(node, { headers: { Authorization: `Bearer ${metricsToken}` } });
      expect(sample(text, "pwdless_http_request_duration_seconds_count", { route: "/metrics", status: "401" })).toBe(1);

      const admin = await signIn(node, "ops@example.com", smtp);
      expect((await browse(node, admin, "/metrics")).status).toBe(200);
      const staff = await signIn(node, "staff@example.com", smtp);
      expect((await browse(node, staff, "/metrics")).status).toBe(403);
      expect((await browse(node, new CookieJar().set("pwdless_session", "Fe26.2*junk"), "/metrics")).status).toBe(403);
    } finally {
      await smtp.stop();
    }
  });

  it("refuses to start with a METRICS_TOKEN too short to be secret", async () => {
    const node = await startNode({ env: { METRICS_TOKEN: "short" }, waitUntil: "none" });
    expect(await node.waitForExit()).toBe(1);
    expect(node.log).toContain("METRICS_TOKEN must be at least 32 characters");
  });

  it("labels a request to any route of the build by that route's id, never `other`", async () => {
    const build = (await import(pathToFileURL(path.join(ROOT, "build/server/index.js")).href)) as ServerBuild;
    const labels = new RouteLabels(build.routes);
    const routes = Object.values(build.routes);
    const fullPath = (id: string | undefined): string => {
      const route = id ? build.routes[id] : undefined;
      if (!route) return "";
      const parent = fullPath(route.parentId);
      return route.path ? `${parent}/${route.path}` : parent;
    };
    let checked = 0;
    for (const route of routes) {
      if (route.id === "root" || (route.path === undefined && !route.index)) continue;
      // the catch-all 404 route answers only what no other route does: labelled `other` (below)
      if (route.id === "routes/$") continue;
      // a path this route answers: parameters and splats filled in
      const sample = (fullPath(route.id) || "/").replace(/:[\w-]+/g, "x").replace(/\*$/, "a/b");
      const indexChild = routes.find((r) => r.parentId === route.id && r.index)?.id;
      expect([route.id, indexChild], sample).toContain(labels.of(sample));
      checked += 1;
    }
    expect(checked).toBeGreaterThan(20);
    expect(labels.of("/no/such/page")).toBe("other");
    expect(labels.of("/healthz")).toBe("/healthz");
    expect(labels.of("/auth/forward")).toBe("/auth/forward");
  });
});
