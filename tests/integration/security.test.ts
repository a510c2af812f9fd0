/**
 * Security round two, as an attacker or a careless operator meets it: local mode off loopback,
 * limits under bursts and floods, a stolen refresh cookie, and tokens another service verifies.
 */
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clusterEnv, startClusterNodes, waitForMesh } from "../support/cluster";
import { CookieJar } from "../support/cookie-jar";
import { accessToken, browse, form, signIn } from "../support/flows";
import { freePort } from "../support/ports";
import { rawRequest } from "../support/raw-http";
import { ROOT, startNode, stopAllNodes, type NodeProcess } from "../support/node";
import { TestSmtpServer } from "../support/smtp";
import { waitFor } from "../support/wait";

const run = promisify(execFile);

let smtp: TestSmtpServer;
beforeAll(async () => {
  smtp = await new TestSmtpServer().start();
});
afterAll(async () => {
  await stopAllNodes();
  await smtp.stop();
});

const loginBody = (email: string) => new URLSearchParams({ email }).toString();
const FORM = { "Content-Type": "application/x-www-form-urlencoded" };

describe("local mode is for this machine only", () => {
  it("refuses to start with a public APP_URL or HOST outside production, in one line that says what to set", async () => {
    for (const env of [
      { APP_URL: "https://login.example.com", SMTP_URL: `smtp://127.0.0.1:${smtp.port}` },
      { HOST: "0.0.0.0" },
    ]) {
      const node = await startNode({ env, waitUntil: "none" });
      expect(await node.waitForExit()).toBe(1);
      const lines = node.output.filter((l) => l.startsWith("config: "));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain("local mode is for this machine only");
      expect(lines[0]).toContain("NODE_ENV=production");
      expect(node.log).not.toMatch(/\n\s+at /);
    }
  });

  it("with the staging override: starts, says so loudly, and still refuses the Dev OIDC provider and open /cluster", async () => {
    const port = await freePort();
    const node = await startNode({
      port,
      env: {
        APP_URL: `http://staging.example.test:${port}`,
        ALLOW_NON_LOOPBACK_LOCAL_MODE: "true",
        SMTP_URL: `smtp://127.0.0.1:${smtp.port}`,
      },
    });
    const warning = node.events().find((e) => e.event === "unsafe-mode");
    expect(warning).toMatchObject({ level: "warn" });
    expect(String(warning!.msg)).toContain("ALLOW_NON_LOOPBACK_LOCAL_MODE");
    expect(await (await node.fetch("/login")).text()).not.toContain("Dev OIDC");
    expect((await node.fetch("/dev/oidc/.well-known/openid-configuration")).status).toBe(404);
    expect((await node.fetch("/auth/dev", { method: "POST" })).status).toBeGreaterThanOrEqual(400);
    for (const p of ["/cluster.json", "/cluster/tables/users.json"]) expect((await node.fetch(p)).status).toBe(401);
    expect((await node.fetch("/dev/mailbox.json")).status).toBe(404);

    const devOidc = await startNode({
      env: {
        APP_URL: "http://staging.example.test",
        ALLOW_NON_LOOPBACK_LOCAL_MODE: "true",
        SMTP_URL: `smtp://127.0.0.1:${smtp.port}`,
        DEV_OIDC: "true",
      },
      waitUntil: "none",
    });
    expect(await devOidc.waitForExit()).toBe(1);
    expect(devOidc.log).toContain("config: DEV_OIDC needs a loopback APP_URL");
  });

  it("on loopback, local mode keeps the Dev OIDC provider and the open cluster view", async () => {
    const node = await startNode();
    expect(await (await node.fetch("/login")).text()).toContain("Dev OIDC");
    expect((await node.fetch("/cluster/tables/users.json")).status).toBe(200);
  });
});

describe("per-address link limits hold under bursts and floods", () => {
  let node: NodeProcess;
  beforeAll(async () => {
    node = await startNode({ env: { RATE_LIMIT_REQUESTS_PER_IP: "10000", SMTP_URL: `smtp://127.0.0.1:${smtp.port}` } });
  });

  it("sends 3 links, not 12, for 12 concurrent requests for one address", async () => {
    const email = "burst@example.com";
    const answers = await Promise.all(
      Array.from({ length: 12 }, () => node.fetch("/login", { method: "POST", headers: FORM, body: loginBody(email) })),
    );
    const statuses = answers.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 302)).toHaveLength(3);
    expect(statuses.filter((s) => s === 429)).toHaveLength(9);
    await waitFor("3 mails", () => smtp.to(email).length === 3);
    // and no fourth arrives late
    expect((await node.fetch("/login", { method: "POST", headers: FORM, body: loginBody(email) })).status).toBe(429);
    expect(smtp.to(email)).toHaveLength(3);
  });

  it("lets the owner get a link within a minute while a stranger's address floods requests for it", async () => {
    const email = "owner@example.com";
    const strangerAnswers: number[] = [];
    for (let i = 0; i < 20; i++) {
      const res = await rawRequest(node, {
        method: "POST",
        path: "/login",
        headers: FORM,
        body: loginBody(email),
        localAddress: "127.0.0.2",
      });
      strangerAnswers.push(res.status);
      if (res.status === 429) expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
    }
    expect(strangerAnswers.filter((s) => s === 302)).toHaveLength(3);
    expect(strangerAnswers.filter((s) => s === 429)).toHaveLength(17);
    // the owner, from their own address, while the stranger's budget is spent
    const jar = new CookieJar();
    const started = Date.now();
    const res = await browse(node, jar, "/login", form({ email }));
    expect(res.status).toBe(302);
    await waitFor("the owner's link", () => smtp.to(email).length === 4, 60_000);
    expect(Date.now() - started).toBeLessThan(60_000);
  });

  it("counts plus+1@ … plus+5@ as one mailbox, and mails each to the address typed", async () => {
    const statuses: number[] = [];
    for (let i = 1; i <= 5; i++) {
      statuses.push(
        (await node.fetch("/login", { method: "POST", headers: FORM, body: loginBody(`plus+${i}@example.com`) }))
          .status,
      );
    }
    expect(statuses).toEqual([302, 302, 302, 429, 429]);
    await waitFor("three mails", () => [1, 2, 3].every((i) => smtp.to(`plus+${i}@example.com`).length === 1));
    expect(smtp.to("plus@example.com")).toHaveLength(0);
    expect(smtp.to("plus+4@example.com")).toHaveLength(0);
  });

  it("gives the slot back when the mail cannot be sent", async () => {
    const dead = await startNode({
      env: { SMTP_URL: `smtp://127.0.0.1:${await freePort()}`, RATE_LIMIT_REQUESTS_PER_IP: "10000" },
    });
    // five failed sends against a budget of three: each one is refunded, so none is a 429
    for (let i = 0; i < 5; i++) {
      const res = await dead.fetch("/login", { method: "POST", headers: FORM, body: loginBody("unlucky@example.com") });
      expect(res.status).toBe(503);
    }
  });
});

describe("per-IP limits behind a proxy", () => {
  it("groups IPv6 clients by /64", async () => {
    const node = await startNode({ env: { TRUST_PROXY: "true", RATE_LIMIT_REQUESTS_PER_IP: "3" } });
    const ask = (ip: string, i: number) =>
      node.fetch("/login", {
        method: "POST",
        headers: { ...FORM, "X-Forwarded-For": ip },
        body: loginBody(`v6-${i}@example.com`),
      });
    const sameNet = ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:aaaa::3", "2001:db8:1:2:ffff:ffff:ffff:ffff"];
    const statuses = [];
    for (const [i, ip] of sameNet.entries()) statuses.push((await ask(ip, i)).status);
    expect(statuses).toEqual([302, 302, 302, 429]);
    expect((await ask("2001:db8:1:3::1", 9)).status).toBe(302);
  });
});

describe("a stolen refresh cookie", () => {
  it("replayed after the grace window ends the session on every node, for the thief and the owner, with an audit event", async () => {
    const [a, b] = await startClusterNodes(2, { ...clusterEnv(), REFRESH_REUSE_GRACE_SECONDS: "1" });
    await waitForMesh([a!, b!]);
    const owner = await signIn(a!, "stolen@example.com");
    const stolen = owner.get("pwdless_session")!;
    const token = await accessToken(a!, owner); // the owner refreshes: generation 1
    expect(owner.get("pwdless_session")).not.toBe(stolen);
    const thiefRefresh = () =>
      b!.fetch("/auth/refresh", { method: "POST", headers: { Cookie: `pwdless_session=${stolen}` } });
    // within the grace window the old cookie still works (another tab); after it, it ends everything
    await waitFor(
      "the replayed cookie to be refused on the other node",
      async () => (await thiefRefresh()).status === 401,
    );
    await waitFor("the owner's cookie refused on the first node", async () => {
      const res = await browse(a!, owner, "/auth/refresh", { method: "POST" });
      return res.status === 401;
    });
    expect((await a!.fetch("/api/me", { headers: { Authorization: `Bearer ${token}` } })).status).toBe(401);
    expect((await b!.fetch("/api/me", { headers: { Authorization: `Bearer ${token}` } })).status).toBe(401);
    const reuse = b!.events().find((e) => e.event === "refresh-reuse");
    expect(reuse).toMatchObject({ audit: true, reason: "old-cookie-generation", cookieGen: 0 });
    expect(JSON.stringify(reuse)).not.toContain(stolen);
  });
});

describe("access tokens another service verifies", () => {
  it("publishes Ed25519 keys at /.well-known/jwks.json, and a Python verifier accepts our token and refuses a tampered one", async () => {
    const node = await startNode();
    const jwksRes = await node.fetch("/.well-known/jwks.json");
    expect(jwksRes.status).toBe(200);
    const jwks = (await jwksRes.json()) as { keys: Record<string, string>[] };
    expect(jwks.keys[0]).toMatchObject({ kty: "OKP", crv: "Ed25519", alg: "EdDSA", use: "sig" });
    expect(jwks.keys[0]).not.toHaveProperty("d");

    const token = await accessToken(node, await signIn(node, "api-user@example.com"));
    const header = JSON.parse(Buffer.from(token.split(".")[0]!, "base64url").toString()) as Record<string, string>;
    expect(header).toMatchObject({ alg: "EdDSA", kid: jwks.keys[0]!.kid });
    const args = [
      path.join(ROOT, "examples/verify_access_token.py"),
      "--jwks",
      `${node.url}/.well-known/jwks.json`,
      "--issuer",
      `urn:pwdless-gs:${node.env.CLUSTER_NAME}`,
      "--audience",
      `urn:pwdless-gs:${node.env.CLUSTER_NAME}:api`,
    ];
    const { stdout } = await run("python3", [...args, token]);
    const me = (await (await node.fetch("/api/me", { headers: { Authorization: `Bearer ${token}` } })).json()) as {
      id: string;
    };
    expect(JSON.parse(stdout)).toMatchObject({ sub: me.id, iss: `urn:pwdless-gs:${node.env.CLUSTER_NAME}` });

    const [h, p, s] = token.split(".");
    const otherPayload = Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(p!, "base64url").toString()), sub: "someone-else" }),
    ).toString("base64url");
    await expect(run("python3", [...args, `${h}.${otherPayload}.${s}`])).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining("bad signature"),
    });
    await expect(run("python3", [...args.slice(0, -1), "https://elsewhere.example", token])).rejects.toMatchObject({
      code: 1,
    });
  });
});
