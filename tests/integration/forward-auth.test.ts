/**
 * Forward auth as an operator sets it up: Debian's nginx (and Caddy) with the README's snippets,
 * in front of a tiny app, asking node A of a two-node cluster at `GET /auth/forward`.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { spawnSync } from "node:child_process";
import { clusterEnv, startClusterNodes, waitForMesh } from "../support/cluster";
import { CookieJar } from "../support/cookie-jar";
import { browse, form, requestMail, signIn } from "../support/flows";
import { startNode, stopAllNodes, tempDir, type NodeProcess } from "../support/node";
import { freePort } from "../support/ports";
import {
  CADDY,
  caddySnippet,
  nginxSnippet,
  snippet,
  startCaddy,
  startNginx,
  UpstreamApp,
  type ProxyProcess,
} from "../support/proxies";
import { rawRequest } from "../support/raw-http";
import { waitFor } from "../support/wait";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A request through a proxy as a browser with `jar` makes it (no redirects followed). */
async function through(proxy: ProxyProcess, jar: CookieJar, path: string, headers: Record<string, string> = {}) {
  const h = new Headers(headers);
  if (jar.header()) h.set("Cookie", jar.header());
  return fetch(`${proxy.url}${path}`, { redirect: "manual", headers: h });
}

/** Sign in on `node` with the emailed code, asking to come back to `redirectTo`; the answer's Location. */
async function signInWithCode(node: NodeProcess, jar: CookieJar, email: string, redirectTo: string) {
  const { code } = await requestMail(node, jar, email, undefined, { redirectTo });
  const done = await browse(node, jar, "/login/sent", form({ code }));
  expect(done.status).toBe(302);
  return done.headers.get("location");
}

describe("forward auth behind Debian's nginx, the README's snippet, node A of two", () => {
  let a: NodeProcess;
  let b: NodeProcess;
  let nginx: ProxyProcess;
  const app = new UpstreamApp();
  let protectedUrl: string;

  beforeAll(async () => {
    await app.start();
    const nginxPort = await freePort();
    protectedUrl = `http://127.0.0.1:${nginxPort}`;
    [a, b] = (await startClusterNodes(2, {
      ...clusterEnv(),
      FORWARD_AUTH_HOSTS: `127.0.0.1:${nginxPort}`,
      TRUST_PROXY: "127.0.0.1",
    })) as [NodeProcess, NodeProcess];
    await waitForMesh([a, b]);
    nginx = await startNginx(
      nginxPort,
      nginxSnippet({ proxy: `127.0.0.1:${nginxPort}`, pwdless: `127.0.0.1:${a.port}`, app: app.address }),
    );
  });
  afterAll(async () => {
    await nginx?.stop();
    await app.stop();
    await stopAllNodes();
  });

  it("sends a stranger to sign in, and back to the page asked for after signing in with the code", async () => {
    const jar = new CookieJar();
    const asked = `${protectedUrl}/reports/q3?year=2026&format=csv`;
    const refused = await through(nginx, jar, "/reports/q3?year=2026&format=csv");
    expect(refused.status).toBe(302);
    expect(refused.headers.get("location")).toBe(`${a.url}/login?redirectTo=${encodeURIComponent(asked)}`);
    expect(app.seen).toEqual([]);

    // the login page keeps the way back, and the sign-in ends there
    const login = await browse(
      a,
      jar,
      new URL(refused.headers.get("location")!).pathname + new URL(refused.headers.get("location")!).search,
    );
    expect(login.status).toBe(200);
    expect(await login.text()).toContain(`value="${asked.replace(/&/g, "&amp;")}"`);
    expect(await signInWithCode(a, jar, "reader@example.com", asked)).toBe(asked);

    const allowed = await through(nginx, jar, "/reports/q3?year=2026&format=csv");
    expect(allowed.status).toBe(200);
    expect(app.seen.at(-1)).toMatchObject({ url: "/reports/q3?year=2026&format=csv", email: "reader@example.com" });
    expect(app.seen.at(-1)!.user).toMatch(UUID);
    // forward auth never sets a cookie: nothing for nginx to drop
    expect(allowed.headers.getSetCookie()).toEqual([]);
  });

  it("gives the app the signed-in person, whatever a client claims, and never moves the cookie's generation", async () => {
    const jar = await signIn(a, "viewer@example.com");
    const cookieBefore = jar.get("pwdless_session");
    for (let i = 0; i < 20; i++) {
      const res = await through(nginx, jar, `/page/${i}`, { "X-Auth-Request-Email": "mallory@example.com" });
      expect(res.status).toBe(200);
      expect(app.seen.at(-1)).toMatchObject({ url: `/page/${i}`, email: "viewer@example.com" });
    }
    // a stranger's claim reaches nothing
    const before = app.seen.length;
    const stranger = await through(nginx, new CookieJar(), "/page/x", { "X-Auth-Request-Email": "viewer@example.com" });
    expect(stranger.status).toBe(302);
    expect(app.seen).toHaveLength(before);
    // the same cookie still works on the API's refresh: twenty checks did not move its generation
    expect(jar.get("pwdless_session")).toBe(cookieBefore);
    expect((await browse(a, jar, "/auth/refresh", { method: "POST" })).status).toBe(200);
    const sessions = (await (await a.fetch("/cluster/tables/sessions.json")).json()) as { rows: unknown[] };
    expect(sessions.rows.length).toBeGreaterThan(0);
    expect(a.events().some((e) => e.event === "refresh-reuse")).toBe(false);
  });

  it("guards every method: a signed-in POST reaches the app, a stranger's goes nowhere", async () => {
    const jar = await signIn(a, "poster@example.com");
    const body = "comment=hello";
    const headers = { "Content-Type": "application/x-www-form-urlencoded", Origin: protectedUrl };
    const post = await fetch(`${protectedUrl}/comments`, {
      method: "POST",
      redirect: "manual",
      headers: { ...headers, Cookie: jar.header() },
      body,
    });
    expect(post.status).toBe(200);
    expect(app.seen.at(-1)).toMatchObject({ method: "POST", url: "/comments", email: "poster@example.com" });
    const seen = app.seen.length;
    const stranger = await fetch(`${protectedUrl}/comments`, { method: "POST", redirect: "manual", headers, body });
    expect(stranger.status).toBe(302);
    expect(stranger.headers.get("location")).toContain(`${a.url}/login?redirectTo=`);
    expect(app.seen).toHaveLength(seen);
    const head = await fetch(`${protectedUrl}/comments`, { method: "HEAD", headers: { Cookie: jar.header() } });
    expect(head.status).toBe(200);
    // nginx checks with a GET subrequest whatever the method; a proxy that sends the request's own
    // method (a POST from another site) is answered alike, not refused as a cross-site form post
    const direct = await rawRequest(a, {
      method: "POST",
      path: "/auth/forward",
      headers: { Cookie: jar.header(), Origin: protectedUrl, "Sec-Fetch-Site": "cross-site" },
    });
    expect(direct.status).toBe(200);
    expect(direct.headers.get("x-auth-request-email")).toBe("poster@example.com");
  });

  it("refuses the next request through nginx once the person signed out on node B", async () => {
    const jar = await signIn(a, "leaver@example.com");
    expect((await through(nginx, jar, "/inbox")).status).toBe(200);
    const revocations = async (node: NodeProcess) =>
      ((await (await node.fetch("/cluster/tables/revocations.json")).json()) as { rows: unknown[] }).rows.length;
    const known = await revocations(a);
    const out = await browse(b, jar.clone(), "/logout", { method: "POST" });
    expect(out.status).toBe(302);
    await waitFor("node A to hold B's revocation", async () => (await revocations(a)) > known);
    const seen = app.seen.length;
    const next = await through(nginx, jar, "/inbox");
    expect(next.status).toBe(302);
    expect(next.headers.get("location")).toContain(`${a.url}/login?redirectTo=`);
    expect(app.seen).toHaveLength(seen);
  });

  it("refuses to send anyone back to a host not in FORWARD_AUTH_HOSTS", async () => {
    // nginx answers any Host: the way back would lead to evil.example, so it is left out
    const res = await rawRequest(nginx, { path: "/phish", headers: { Host: "evil.example" } });
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe(`${a.url}/login`);
    await waitFor("the operator's log line", () =>
      a.events().some((e) => e.event === "forward-auth" && e.host === "evil.example"),
    );
    // and a sign-in asked to end there ends on the account page instead
    const jar = new CookieJar();
    expect(await signInWithCode(a, jar, "careful@example.com", "http://evil.example/phish")).toBe("/account");
    expect(await signInWithCode(a, jar, "careful@example.com", `http://127.0.0.1:${nginx.port + 1}/`)).toBe("/account");
  });

  it("believes X-Original-URL and X-Forwarded-* only from a TRUST_PROXY address", async () => {
    const headers = { "X-Original-URL": `${protectedUrl}/from-anyone` };
    const untrusted = await rawRequest(a, { path: "/auth/forward?redirect=1", headers, localAddress: "127.0.0.2" });
    expect(untrusted.status).toBe(302);
    expect(untrusted.headers.get("location")).toBe(`${a.url}/login`);
    const trusted = await rawRequest(a, { path: "/auth/forward?redirect=1", headers, localAddress: "127.0.0.1" });
    expect(trusted.headers.get("location")).toBe(
      `${a.url}/login?redirectTo=${encodeURIComponent(`${protectedUrl}/from-anyone`)}`,
    );
    // nginx's auth_request wants 401, not a redirect, when not asked for one
    expect((await rawRequest(a, { path: "/auth/forward", headers })).status).toBe(401);
  });
});

describe("the README's Caddy and Traefik snippets", () => {
  it("Caddy: Debian's caddy accepts the snippet as written, and runs it in front of an app", async () => {
    const home = tempDir("pwdless-caddy-validate");
    const check = spawnSync(
      CADDY,
      ["validate", "--adapter", "caddyfile", "--config", "examples/forward-auth/Caddyfile"],
      {
        env: { ...process.env, HOME: home, XDG_DATA_HOME: home, XDG_CONFIG_HOME: home },
        encoding: "utf8",
        timeout: 30_000,
      },
    );
    expect(check.stdout + check.stderr).toContain("Valid configuration");
    expect(check.status).toBe(0);

    const app = await new UpstreamApp().start();
    const caddyPort = await freePort();
    const node = await startNode({ env: { FORWARD_AUTH_HOSTS: `127.0.0.1:${caddyPort}`, TRUST_PROXY: "127.0.0.1" } });
    const caddy = await startCaddy(
      caddyPort,
      caddySnippet({ proxy: `127.0.0.1:${caddyPort}`, pwdless: `127.0.0.1:${node.port}`, app: app.address }),
    );
    try {
      const stranger = await through(caddy, new CookieJar(), "/dashboards/7?tab=cpu");
      expect(stranger.status).toBe(302);
      expect(stranger.headers.get("location")).toBe(
        `${node.url}/login?redirectTo=${encodeURIComponent(`http://127.0.0.1:${caddyPort}/dashboards/7?tab=cpu`)}`,
      );
      const jar = await signIn(node, "caddy@example.com");
      const allowed = await through(caddy, jar, "/dashboards/7", { "X-Auth-Request-Email": "mallory@example.com" });
      expect(allowed.status).toBe(200);
      expect(app.seen.at(-1)).toMatchObject({ url: "/dashboards/7", email: "caddy@example.com" });
      expect(app.seen.at(-1)!.user).toMatch(UUID);
    } finally {
      await caddy.stop();
      await app.stop();
      await stopAllNodes();
    }
  });

  it("Traefik (not in Debian): the YAML parses, and the headers its forwardAuth sends get the right answers", async () => {
    const config = parseYaml(snippet("traefik.yml")) as {
      http: {
        middlewares: { pwdless: { forwardAuth: { address: string; authResponseHeaders: string[] } } };
        routers: { app: { middlewares: string[]; service: string; rule: string } };
        services: { app: { loadBalancer: { servers: { url: string }[] } } };
      };
    };
    const auth = config.http.middlewares.pwdless.forwardAuth;
    expect(auth.authResponseHeaders).toEqual(["X-Auth-Request-User", "X-Auth-Request-Email"]);
    expect(config.http.routers.app.middlewares).toEqual(["pwdless"]);
    expect(config.http.routers.app.rule).toBe("Host(`app.example.com`)");
    expect(config.http.services[config.http.routers.app.service as "app"].loadBalancer.servers[0]!.url).toBe(
      "http://127.0.0.1:8080",
    );

    // what Traefik sends to `address`: the request's cookie and X-Forwarded-Proto/Host/Uri
    const node = await startNode({ env: { FORWARD_AUTH_HOSTS: "127.0.0.1:8080", TRUST_PROXY: "127.0.0.1" } });
    try {
      const address = new URL(auth.address);
      const path = `${address.pathname}${address.search}`;
      const forwarded = {
        "X-Forwarded-Proto": "http",
        "X-Forwarded-Host": "127.0.0.1:8080",
        "X-Forwarded-Uri": "/wiki?page=a%20b",
      };
      const stranger = await rawRequest(node, { path, headers: forwarded });
      expect(stranger.status).toBe(302);
      expect(stranger.headers.get("location")).toBe(
        `${node.url}/login?redirectTo=${encodeURIComponent("http://127.0.0.1:8080/wiki?page=a%20b")}`,
      );
      const jar = await signIn(node, "traefik@example.com");
      const allowed = await rawRequest(node, { path, headers: { ...forwarded, Cookie: jar.header() } });
      expect(allowed.status).toBe(200);
      for (const name of auth.authResponseHeaders) expect(allowed.headers.get(name)).toBeTruthy();
      expect(allowed.headers.get("X-Auth-Request-Email")).toBe("traefik@example.com");
    } finally {
      await stopAllNodes();
    }
  });
});
