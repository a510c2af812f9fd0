import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clusterEnv, startClusterNodes, status, waitForMesh } from "../support/cluster";
import { CookieJar } from "../support/cookie-jar";
import { browse, form, pathOf, requestMail } from "../support/flows";
import { startNode, stopAllNodes, type NodeProcess } from "../support/node";
import { codeIn, TestSmtpServer } from "../support/smtp";
import { waitFor } from "../support/wait";

const LIMITS = {
  RATE_LIMIT_REQUESTS_PER_IP: "1000",
  RATE_LIMIT_EMAILS_PER_ADDRESS: "100",
  RATE_LIMIT_OPENINGS_PER_IP: "1000",
};

/** A code other than the right one, as a person mistyping would send. */
const wrongOf = (code: string, n = 1) => String((Number(code) + n) % 1_000_000).padStart(6, "0");

const typeCode = (node: NodeProcess, jar: CookieJar, code: string) => browse(node, jar, "/login/sent", form({ code }));

/** POST /api/auth/email/code, with the cookies of the client that asked when given its jar. */
const apiCode = (node: NodeProcess, body: unknown, jar = new CookieJar()) =>
  browse(node, jar, "/api/auth/email/code", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });

async function auditLines(node: NodeProcess, event: string): Promise<Record<string, unknown>[]> {
  return node.log
    .split("\n")
    .filter((line) => line.includes('"audit":true'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((line) => line.event === event);
}

describe("the code in the sign-in email, on one server process with real SMTP", () => {
  const smtp = new TestSmtpServer();
  let node: NodeProcess;

  beforeAll(async () => {
    await smtp.start();
    node = await startNode({ env: { SMTP_URL: smtp.url, ...LIMITS } });
  });
  afterAll(async () => {
    await stopAllNodes();
    await smtp.stop();
  });

  it("mails a 6-digit code beside the link, and the page has the code field", async () => {
    const jar = new CookieJar();
    const { link, code } = await requestMail(node, jar, "field@example.com", smtp);
    expect(code).toMatch(/^[0-9]{6}$/);
    expect(link).toContain("/auth/email/callback?token=");
    const mail = smtp.to("field@example.com")[0]!;
    expect(mail.html).toContain(code);
    const page = await (await browse(node, jar, "/login/sent")).text();
    // HTML attribute names are case-insensitive; React writes them camel-cased
    expect(page).toMatch(/<input[^>]*name="code"[^>]*autocomplete="one-time-code"/i);
    expect(page).toMatch(/<input[^>]*name="code"[^>]*inputmode="numeric"/i);
  });

  it("signs in with the right code in the browser that asked, and the link is then dead", async () => {
    const jar = new CookieJar();
    const { link, code } = await requestMail(node, jar, "right@example.com", smtp, { redirectTo: "/account?via=code" });
    const res = await typeCode(node, jar, code);
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe("/account?via=code");
    expect(jar.get("pwdless_session")).toBeDefined();
    expect((await browse(node, jar, "/account")).status).toBe(200);
    // using the code used the link
    const opened = await browse(node, new CookieJar(), pathOf(link), { method: "POST" });
    expect(opened.status).toBe(410);
    expect(await opened.text()).toContain("This link was already used");
    // and the code works once
    expect((await apiCode(node, { email: "right@example.com", code })).status).toBe(400);
    const signIns = await auditLines(node, "sign-in");
    expect(signIns.some((l) => l.method === "code")).toBe(true);
  });

  it("refuses the code once the link was used", async () => {
    const jar = new CookieJar();
    const { link, code } = await requestMail(node, jar, "linkfirst@example.com", smtp);
    const held = jar.clone();
    expect((await browse(node, jar, pathOf(link), { method: "POST" })).status).toBe(302);
    const res = await apiCode(node, { email: "linkfirst@example.com", code }, held);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe("invalid_request");
  });

  it("refuses a wrong code with an audit event and nothing signed in; the right one still works", async () => {
    const jar = new CookieJar();
    const { code } = await requestMail(node, jar, "wrong@example.com", smtp);
    const res = await typeCode(node, jar, wrongOf(code));
    expect(res.status).toBe(400);
    expect(await res.text()).toContain("That code is not right");
    expect(jar.get("pwdless_session")).toBeUndefined();
    await waitFor("the refusal in the audit", async () =>
      (await auditLines(node, "refused")).some((l) => l.method === "code" && l.reason === "wrong-code"),
    );
    expect((await typeCode(node, jar, code)).status).toBe(302);
  });

  it("burns the code and its link after 5 wrong tries", async () => {
    const jar = new CookieJar();
    const { link, code } = await requestMail(node, jar, "burn@example.com", smtp);
    for (let i = 1; i <= 5; i++) expect((await typeCode(node, jar, wrongOf(code, i))).status).toBe(400);
    // the right code no longer works, and neither does the link
    expect((await typeCode(node, jar, code)).status).toBe(400);
    expect(jar.get("pwdless_session")).toBeUndefined();
    const opened = await browse(node, jar, pathOf(link), { method: "POST" });
    expect(opened.status).toBe(410);
    // a new email works again
    const fresh = await requestMail(node, jar, "burn@example.com", smtp);
    expect((await typeCode(node, jar, fresh.code)).status).toBe(302);
  });

  it("counts 10 wrong tries per address per hour, not reset by asking for new codes; the link still works", async () => {
    const jar = new CookieJar();
    const email = "budget@example.com";
    for (const tries of [4, 4]) {
      const { code } = await requestMail(node, jar, email, smtp);
      for (let i = 1; i <= tries; i++) expect((await typeCode(node, jar, wrongOf(code, i))).status).toBe(400);
    }
    const last = await requestMail(node, jar, email, smtp);
    for (let i = 1; i <= 2; i++) expect((await typeCode(node, jar, wrongOf(last.code, i))).status).toBe(400);
    // ten wrong tries: even the right code is refused now, over the page and the API
    const refused = await typeCode(node, jar, last.code);
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toMatch(/^[0-9]+$/);
    expect(await refused.text()).toContain("Too many wrong codes");
    const api = await apiCode(node, { email, code: last.code }, jar.clone());
    expect(api.status).toBe(429);
    expect(((await api.json()) as { error: string }).error).toBe("rate_limited");
    await waitFor("the budget refusal in the audit", async () =>
      (await auditLines(node, "rate-limited")).some((l) => l.reason === "wrong-per-address"),
    );
    // the link is not affected by the code budget
    expect((await browse(node, jar, pathOf(last.link), { method: "POST" })).status).toBe(302);
  });

  it("API clients: POST /api/auth/email then /api/auth/email/code → cookie and access token", async () => {
    const cli = new CookieJar();
    const asked = await browse(node, cli, "/api/auth/email", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: "Cli@Example.com" }),
    });
    expect(asked.status).toBe(202);
    const mail = await waitFor("the mail", () => smtp.to("cli@example.com")[0]);
    const code = codeIn(mail);
    // the right code, without the cookie of the client that asked: refused, as the link would be
    const elsewhere = await apiCode(node, { email: "cli@example.com", code });
    expect(elsewhere.status).toBe(400);
    expect(((await elsewhere.json()) as { message: string }).message).toContain("only for the client that asked");
    const res = await apiCode(node, { email: "cli@example.com", code }, cli);
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toContain("no-store");
    const body = (await res.json()) as { access_token: string; token_type: string; expires_in: number };
    expect(body.token_type).toBe("Bearer");
    expect(body.expires_in).toBeGreaterThan(0);
    expect(res.headers.getSetCookie().some((c) => c.startsWith("pwdless_session="))).toBe(true);
    const me = await node.fetch("/api/me", { headers: { Authorization: `Bearer ${body.access_token}` } });
    expect(((await me.json()) as { email: string }).email).toBe("cli@example.com");
  });
});

describe("the code across two server processes of one cluster", () => {
  let a: NodeProcess, b: NodeProcess;

  /** Every node holds `count` pending codes: each test's codes end used or burnt, so this tells a row arrived. */
  const pendingOnAll = (count: number) =>
    waitFor(`${count} pending codes on both nodes`, async () =>
      (await Promise.all([a, b].map(status))).every((s) => (s.tables.codePending ?? 0) === count),
    );

  beforeAll(async () => {
    // LINK_SAME_BROWSER=false: a code works with the address alone, from any client and node
    [a, b] = await startClusterNodes(2, { ...clusterEnv(), ...LIMITS, LINK_SAME_BROWSER: "false" });
    await waitForMesh([a, b]);
  });
  afterAll(stopAllNodes);

  it("signs in on node B with a code mailed by node A", async () => {
    const { code } = await requestMail(a, new CookieJar(), "cross@example.com");
    await pendingOnAll(1);
    const res = await apiCode(b, { email: "cross@example.com", code });
    expect(res.status).toBe(200);
  });

  it("burns a code after 5 wrong tries split across both nodes", async () => {
    const email = "split@example.com";
    await pendingOnAll(0);
    const { link, code } = await requestMail(a, new CookieJar(), email);
    await pendingOnAll(1);
    for (let i = 1; i <= 5; i++) {
      const res = await apiCode(i % 2 ? b : a, { email, code: wrongOf(code, i) });
      expect(res.status).toBe(400);
    }
    expect((await apiCode(b, { email, code })).status).toBe(400);
    expect((await apiCode(a, { email, code })).status).toBe(400);
    expect((await a.fetch(pathOf(link), { method: "POST" })).status).toBe(410);
  });

  it("sums the wrong tries per address over codes issued by both nodes", async () => {
    const email = "budget-split@example.com";
    const before = (await status(a)).tables.codeTries ?? 0;
    // 5 wrong for a code of A (sent to B), 5 wrong for a code of B (sent to A): rows on both nodes
    for (const [issuer, asked] of [
      [a, b],
      [b, a],
    ] as const) {
      await pendingOnAll(0);
      const { code } = await requestMail(issuer, new CookieJar(), email);
      await pendingOnAll(1);
      for (let i = 1; i <= 5; i++) expect((await apiCode(asked, { email, code: wrongOf(code, i) })).status).toBe(400);
    }
    await waitFor("both nodes' rows on both nodes", async () => {
      const [sa, sb] = await Promise.all([status(a), status(b)]);
      return (sa.tables.codeTries ?? 0) >= before + 2 && (sb.tables.codeTries ?? 0) >= before + 2;
    });
    await pendingOnAll(0);
    const jar = new CookieJar();
    const fresh = await requestMail(a, jar, email);
    await pendingOnAll(1);
    expect((await apiCode(b, { email, code: fresh.code })).status).toBe(429);
    expect((await apiCode(a, { email, code: fresh.code })).status).toBe(429);
    // the link still works
    expect((await browse(a, jar, pathOf(fresh.link), { method: "POST" })).status).toBe(302);
  });

  it("answers a code for an unknown address exactly like a wrong code", async () => {
    const { code } = await requestMail(a, new CookieJar(), "known-code@example.com");
    const wrong = await apiCode(b, { email: "known-code@example.com", code: wrongOf(code) });
    const unknown = await apiCode(b, { email: "never-asked@example.com", code: wrongOf(code) });
    expect(unknown.status).toBe(wrong.status);
    expect(await unknown.text()).toBe(await wrong.text());
  });
});
