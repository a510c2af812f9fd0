import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deriveKeys } from "../../server/keys";
import { clusterEnv, startClusterNodes, waitForMesh } from "../support/cluster";
import { CookieJar } from "../support/cookie-jar";
import { accessToken, browse, form, pathOf, requestLink, signIn } from "../support/flows";
import { startNode, stopAllNodes, testSecret, type NodeProcess } from "../support/node";
import { TestSmtpServer } from "../support/smtp";
import { waitFor } from "../support/wait";

afterAll(stopAllNodes);

const ask = (node: NodeProcess, email: string, headers: Record<string, string> = {}) =>
  node.fetch("/login", {
    ...form({ email }),
    headers: { "Content-Type": "application/x-www-form-urlencoded", ...headers },
  });

describe("rate limits", () => {
  it("sends at most 3 links per address per 10 minutes, counted across the cluster, the same for known and unknown addresses", async () => {
    const [a, b] = await startClusterNodes(2, clusterEnv());
    await waitForMesh([a, b]);
    await signIn(a, "known@example.com"); // one link spent on the known address
    for (const node of [a, b]) expect((await ask(node, "known@example.com")).status).toBe(302);
    for (const node of [a, b, a]) expect((await ask(node, "unknown@example.com")).status).toBe(302);

    // the fourth, on either node
    const known = await ask(b, "known@example.com");
    const unknown = await ask(a, "unknown@example.com");
    for (const res of [known, unknown]) {
      expect(res.status).toBe(429);
      expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
      expect(Number(res.headers.get("retry-after"))).toBeLessThanOrEqual(600);
    }
    const knownPage = await known.text();
    const unknownPage = await unknown.text();
    expect(knownPage).toContain("Too many sign-in requests");
    const comparable = (page: string, word: string) =>
      page.replaceAll(word, "X").replace(/nonce="[^"]*"|'nonce-[^']*'/g, "");
    expect(comparable(knownPage, "known")).toBe(comparable(unknownPage, "unknown"));

    // the JSON endpoint counts the same sends and answers in JSON
    const api = await a.fetch("/api/auth/email", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: "known@example.com" }),
    });
    expect(api.status).toBe(429);
    expect(Number(api.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(await api.json()).toMatchObject({ error: "rate_limited" });
    const apiFresh = await a.fetch("/api/auth/email", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: "api-client@example.com" }),
    });
    expect(apiFresh.status).toBe(202);
    expect(await apiFresh.json()).toMatchObject({ status: "sent" });
    expect(apiFresh.headers.getSetCookie().some((c) => c.startsWith("pwdless_link="))).toBe(true);
    const apiBad = await a.fetch("/api/auth/email", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: "{oops",
    });
    expect(apiBad.status).toBe(400);
    expect(await apiBad.json()).toMatchObject({ error: "invalid_request" });
    // other addresses are unaffected
    expect((await ask(a, "someone-else@example.com")).status).toBe(302);
  });

  it("limits link requests and link openings per client IP, believing X-Forwarded-For only with TRUST_PROXY", async () => {
    const strict = await startNode({ env: { RATE_LIMIT_REQUESTS_PER_IP: "4", RATE_LIMIT_OPENINGS_PER_IP: "3" } });
    for (let i = 0; i < 4; i++) {
      const res = await ask(strict, i === 1 ? "not-an-address" : `ip${i}@example.com`, {
        "X-Forwarded-For": `203.0.113.${i}`,
      });
      expect(res.status).toBe(i === 1 ? 400 : 302);
    }
    const over = await ask(strict, "ip9@example.com", { "X-Forwarded-For": "198.51.100.7" });
    expect(over.status).toBe(429);
    expect(await over.text()).toContain("Too many sign-in requests");

    const jar = new CookieJar();
    const behindProxy = await startNode({
      env: { TRUST_PROXY: "true", RATE_LIMIT_REQUESTS_PER_IP: "2", RATE_LIMIT_OPENINGS_PER_IP: "3" },
    });
    for (const ip of ["203.0.113.1", "203.0.113.1"])
      expect((await ask(behindProxy, `p${ip}@example.com`, { "X-Forwarded-For": ip })).status).toBe(302);
    expect((await ask(behindProxy, "p3@example.com", { "X-Forwarded-For": "203.0.113.1" })).status).toBe(429);
    expect((await ask(behindProxy, "p4@example.com", { "X-Forwarded-For": "203.0.113.2" })).status).toBe(302);

    // nothing more is sent to this client from the strict node
    await expect(requestLink(strict, jar, "opener@example.com")).rejects.toThrow(/429/);
    const fresh = await startNode({ env: { RATE_LIMIT_OPENINGS_PER_IP: "3" } });
    const linkFresh = await requestLink(fresh, jar, "opener@example.com");
    for (let i = 0; i < 3; i++) expect((await browse(fresh, jar, pathOf(linkFresh))).status).toBe(200);
    const tooMany = await browse(fresh, jar, pathOf(linkFresh), { method: "POST" });
    expect(tooMany.status).toBe(429);
    expect(await tooMany.text()).toContain("Too many links opened from your network");
    expect(jar.get("pwdless_session")).toBeUndefined();
  });
});

describe("sessions people can see and end", () => {
  it("lists each session with its device and node, ends one from /account on every node, and not someone else's", async () => {
    const [a, b] = await startClusterNodes(2, clusterEnv());
    await waitForMesh([a, b]);
    const laptop = await signIn(a, "owner@example.com");
    const phone = await signIn(b, "owner@example.com");
    const stranger = await signIn(b, "stranger@example.com");
    const page = await waitFor("both sessions on A's account page", async () => {
      const html = await (await browse(a, laptop, "/account")).text();
      return (html.match(/data-testid="session-row"/g) ?? []).length === 2 ? html : undefined;
    });
    expect(page).toContain("This device");
    const sids = [...page.matchAll(/name="sid" value="([^"]+)"/g)].map((m) => m[1]!);
    const phoneToken = await accessToken(b, phone);
    const phoneSid = JSON.parse(Buffer.from(phoneToken.split(".")[1]!, "base64url").toString()).sid as string;
    expect(sids).toContain(phoneSid);

    // a stranger cannot end the owner's session
    const denied = await browse(b, stranger, "/account", form({ sid: phoneSid }));
    expect(denied.status).toBe(404);
    expect((await b.fetch("/api/me", { headers: { Authorization: `Bearer ${phoneToken}` } })).status).toBe(200);

    // the owner ends the phone's session from the laptop, on A; B refuses the phone at once
    const ended = await browse(a, laptop, "/account", form({ sid: phoneSid }));
    expect(ended.status).toBe(302);
    await waitFor(
      "B to refuse the phone",
      async () => (await b.fetch("/api/me", { headers: { Authorization: `Bearer ${phoneToken}` } })).status === 401,
    );
    expect((await browse(b, phone, "/auth/refresh", { method: "POST" })).status).toBe(401);
    expect((await browse(a, laptop, "/auth/refresh", { method: "POST" })).status).toBe(200);

    // sign out everywhere ends the rest
    const again = await signIn(b, "owner@example.com");
    // "everywhere" is every session the page lists: wait until A has the one just made on B
    await waitFor("the new session on A's account page", async () => {
      const html = await (await browse(a, laptop, "/account")).text();
      return (html.match(/data-testid="session-row"/g) ?? []).length === 2;
    });
    await browse(a, laptop, "/logout", form({ scope: "everywhere" }));
    await waitFor(
      "every session ended on B",
      async () => (await browse(b, again.clone(), "/auth/refresh", { method: "POST" })).status === 401,
    );
    expect((await browse(b, stranger, "/auth/refresh", { method: "POST" })).status).toBe(200);
  });
});

describe("headers", () => {
  let node: NodeProcess;
  beforeAll(async () => {
    node = await startNode();
  });

  it("sends a Content-Security-Policy whose nonce is the one on the page's inline scripts, and forbids framing", async () => {
    const res = await node.fetch("/login");
    const csp = res.headers.get("content-security-policy")!;
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("object-src 'none'");
    const nonce = /'nonce-([^']+)'/.exec(csp)![1]!;
    const html = await res.text();
    const inline = [...html.matchAll(/<script(?![^>]*\bsrc=)([^>]*)>/g)];
    expect(inline.length).toBeGreaterThan(0);
    for (const [, attributes] of inline) expect(attributes).toContain(`nonce="${nonce}"`);
    // a fresh nonce on every response
    const again = (await node.fetch("/login")).headers.get("content-security-policy")!;
    expect(again).not.toBe(csp);
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    expect(res.headers.get("strict-transport-security")).toBeNull(); // not in local mode
  });

  it("keeps link pages out of Referer headers and credentials out of caches", async () => {
    const jar = new CookieJar();
    const link = await requestLink(node, jar, "headers@example.com");
    const page = await browse(node, jar, pathOf(link));
    expect(page.headers.get("referrer-policy")).toBe("no-referrer");
    expect(page.headers.get("cache-control")).toBe("no-store");
    const signedIn = await browse(node, jar, pathOf(link), { method: "POST" });
    expect(signedIn.headers.get("cache-control")).toBe("no-store");
    for (const path of ["/account", "/login", "/"]) {
      expect((await browse(node, jar, path)).headers.get("cache-control"), path).toBe("no-store");
    }
    const refresh = await browse(node, jar, "/auth/refresh", { method: "POST" });
    expect(refresh.headers.get("cache-control")).toBe("no-store");
    const token = ((await refresh.json()) as { access_token: string }).access_token;
    const me = await node.fetch("/api/me", { headers: { Authorization: `Bearer ${token}` } });
    expect(me.headers.get("cache-control")).toBe("no-store");
  });

  it("sends HSTS in production", async () => {
    const prod = await startNode({ env: { NODE_ENV: "production", SMTP_URL: "smtp://127.0.0.1:9" } });
    expect((await prod.fetch("/login")).headers.get("strict-transport-security")).toContain("max-age=");
  });
});

describe("logs", () => {
  it("write an audit trail of JSON events and never a link token, cookie, access token or key in production", async () => {
    const smtp = await new TestSmtpServer().start();
    const secret = testSecret();
    const clusterSecret = testSecret();
    try {
      const node = await startNode({
        env: {
          NODE_ENV: "production",
          SMTP_URL: smtp.url,
          SECRET_KEY_BASE: secret,
          CLUSTER_SECRET: clusterSecret,
          RATE_LIMIT_EMAILS_PER_ADDRESS: "2",
        },
      });
      const jar = new CookieJar();
      const link = await requestLink(node, jar, "audit@example.com", smtp);
      await browse(
        node,
        jar,
        `/auth/email/callback?token=${encodeURIComponent(new URL(link).searchParams.get("token")!.slice(0, 50))}`,
        { method: "POST" },
      );
      expect((await browse(node, jar, pathOf(link), { method: "POST" })).status).toBe(302);
      const cookie = jar.get("pwdless_session")!;
      const token = await accessToken(node, jar);
      expect((await node.fetch("/api/me", { headers: { Authorization: `Bearer ${token}` } })).status).toBe(200);
      await node.fetch("/api/me", { headers: { Authorization: `Bearer ${token}x` } });
      await requestLink(node, new CookieJar(), "audit@example.com", smtp);
      expect((await ask(node, "audit@example.com")).status).toBe(429);
      expect((await browse(node, jar, "/logout", form({}))).status).toBe(302);

      await waitFor("the sign-out event", () => node.events().some((e) => e.event === "sign-out"));
      const log = node.log;
      const linkToken = new URL(link).searchParams.get("token")!;
      for (const [what, value] of [
        ["link token", linkToken],
        ["link token (URL-encoded)", encodeURIComponent(linkToken)],
        ["session cookie", cookie],
        ["access token", token],
        ["access token signature", token.split(".")[2]!],
        ["secret key base", secret],
        ["cluster secret", clusterSecret],
        ["cluster key", Buffer.from(deriveKeys(secret).cluster).toString("hex")],
      ] as const) {
        expect(log.includes(value), `${what} appears in the log`).toBe(false);
      }
      expect(log).not.toContain("audit@example.com");

      const audit = node.events().filter((e) => e.audit === true);
      const kinds = audit.map((e) => `${e.event}${e.reason ? `:${e.reason}` : ""}`);
      expect(kinds).toEqual(
        expect.arrayContaining([
          "link-sent",
          "refused:link-invalid",
          "sign-in",
          "rate-limited:emails-per-address",
          "sign-out",
        ]),
      );
      for (const event of audit) {
        expect(event.node, JSON.stringify(event)).toBeTruthy();
        expect(event.ip, JSON.stringify(event)).toMatch(/127\.0\.0\.1/);
        // who, when it can be told: an unreadable link names nobody
        if (event.reason !== "link-invalid")
          expect(Boolean(event.uid) || Boolean(event.emailHash), JSON.stringify(event)).toBe(true);
      }
      const hashes = new Set(audit.filter((e) => e.emailHash).map((e) => e.emailHash));
      expect(hashes.size).toBe(1); // one address, one stable hash
    } finally {
      await smtp.stop();
    }
  });
});
