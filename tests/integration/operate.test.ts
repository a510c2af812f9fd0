// Operating the user base as an operator does: find, lock out and erase users through the admin
// API on a three-node cluster; erased rows leave every node and file and do not come back; signed
// webhooks arrive at least once; and who may sign up.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { ClusterStore } from "../../cluster";
import { readTables } from "../../cluster/persistence/read";
import { clusterEnv, startClusterNodes, waitForMesh } from "../support/cluster";
import { CookieJar } from "../support/cookie-jar";
import { browse, form, pathOf, requestMail, signIn } from "../support/flows";
import { startNode, stopAllNodes, type NodeProcess } from "../support/node";
import { codeIn, TestSmtpServer } from "../support/smtp";
import { waitFor } from "../support/wait";
import { addPasskey, SoftAuthenticator } from "../support/soft-authenticator";
import { WebhookReceiver, webhookSecret } from "../support/webhook-receiver";

const TOKEN = randomBytes(32).toString("base64url");
const HORIZON_SECONDS = 20;

function admin(node: NodeProcess, pathname: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("Authorization", `Bearer ${TOKEN}`);
  return node.fetch(pathname, { ...init, headers });
}

async function idOf(node: NodeProcess, email: string): Promise<string> {
  const res = await admin(node, `/api/admin/users?query=${encodeURIComponent(email)}`);
  const { users } = (await res.json()) as { users: { id: string; email: string }[] };
  const user = users.find((u) => u.email === email);
  if (!user) throw new Error(`${email} not found on :${node.port}`);
  return user.id;
}

/**
 * What a node's tables files hold about `needle`, read as the node reads them at start (snapshot,
 * then the change logs; read only): rows whose value mentions it (tombstones hold none), rows keyed
 * by it, and — the bytes themselves — in how many of the files it appears at all.
 */
async function fileMentions(
  node: NodeProcess,
  needle: string,
): Promise<{ values: number; keys: number; files: number }> {
  const store = new ClusterStore({ nodeId: "reader" });
  await readTables(store, node.dataDir, node.env.CLUSTER_NAME!, { label: "test" }, undefined);
  let values = 0;
  let keys = 0;
  for (const record of store.records()) {
    if (record.key === needle) keys += 1;
    if (record.value !== null && JSON.stringify(record.value).includes(needle)) values += 1;
  }
  const bytes = Buffer.from(needle);
  const files = readdirSync(node.dataDir)
    .filter((name) => name.startsWith("tables"))
    .filter((name) => readFileSync(path.join(node.dataDir, name)).includes(bytes)).length;
  return { values, keys, files };
}

async function apiMe(node: NodeProcess, jar: CookieJar): Promise<number> {
  return (await browse(node, jar.clone(), "/auth/refresh", { method: "POST" })).status;
}

describe("the admin API", () => {
  afterAll(stopAllNodes);

  it("refuses a short ADMIN_API_TOKEN at start", async () => {
    const node = await startNode({ env: { ADMIN_API_TOKEN: "too-short" }, waitUntil: "none" });
    expect(await node.waitForExit()).toBe(1);
    expect(node.log).toContain("ADMIN_API_TOKEN must be at least 32 characters");
  });

  it("answers only the token or an administrator, and pages a prefix search with a cursor", async () => {
    const node = await startNode({ env: { ADMIN_API_TOKEN: TOKEN, ADMIN_EMAILS: "boss@example.com" } });
    for (const e of ["ann1@example.com", "ann2@example.com", "ann3@example.com", "bob@example.com"])
      await signIn(node, e);
    expect((await node.fetch("/api/admin/users")).status).toBe(401);
    const wrong = await node.fetch("/api/admin/users", { headers: { Authorization: `Bearer ${"x".repeat(40)}` } });
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { error: string }).error).toBe("invalid_token");
    // a signed-in person who is not an administrator
    const ann = await signIn(node, "ann1@example.com");
    expect((await browse(node, ann, "/api/admin/users")).status).toBe(403);
    const boss = await signIn(node, "boss@example.com");
    expect((await browse(node, boss, "/api/admin/users?query=bob")).status).toBe(200);

    const first = (await (await admin(node, "/api/admin/users?query=ann&limit=2")).json()) as {
      users: { email: string }[];
      nextCursor: string;
    };
    expect(first.users.map((u) => u.email)).toEqual(["ann1@example.com", "ann2@example.com"]);
    const second = (await (
      await admin(node, `/api/admin/users?query=ann&limit=2&cursor=${encodeURIComponent(first.nextCursor)}`)
    ).json()) as { users: { email: string; id: string }[]; nextCursor: string | null };
    expect(second.users.map((u) => u.email)).toEqual(["ann3@example.com"]);
    expect(second.nextCursor).toBeNull();
    const byId = (await (await admin(node, `/api/admin/users?query=${second.users[0]!.id}`)).json()) as {
      users: { email: string }[];
    };
    expect(byId.users.map((u) => u.email)).toEqual(["ann3@example.com"]);
    const detail = (await (await admin(node, `/api/admin/users/${second.users[0]!.id}`)).json()) as {
      sessions: unknown[];
      identities: { provider: string }[];
    };
    expect(detail.sessions).toHaveLength(1);
    expect(detail.identities[0]!.provider).toBe("email");
    expect((await admin(node, "/api/admin/users?limit=0")).status).toBe(400);
    expect((await admin(node, `/api/admin/users/${"0".repeat(8)}-0000-4000-8000-${"0".repeat(12)}`)).status).toBe(404);
    // a cross-site POST with an administrator's cookie is refused like every cross-site POST
    const crossSite = await browse(node, boss, `/api/admin/users/${second.users[0]!.id}/disable`, {
      method: "POST",
      headers: { "Sec-Fetch-Site": "cross-site" },
    });
    expect(crossSite.status).toBe(403);
    expect(node.events().some((e) => e.event === "admin-act" && e.action === "read-search")).toBe(true);
  });
});

describe("three nodes: disable, erase and webhooks", () => {
  const smtp = new TestSmtpServer();
  const secret = webhookSecret();
  const receiver = new WebhookReceiver(secret);
  afterAll(async () => {
    await stopAllNodes();
    await smtp.stop();
    await receiver.stop();
  });

  it("locks out, erases for good, and delivers signed events at least once", { timeout: 240_000 }, async () => {
    await smtp.start();
    await receiver.start();
    const env = {
      ...clusterEnv(),
      SMTP_URL: smtp.url,
      ADMIN_API_TOKEN: TOKEN,
      TOMBSTONE_HORIZON_SECONDS: String(HORIZON_SECONDS),
      WEBHOOK_URLS: receiver.url,
      WEBHOOK_SECRET: secret,
      // this test mails one address many times on purpose
      RATE_LIMIT_EMAILS_PER_ADDRESS: "100",
      RATE_LIMIT_EMAILS_PER_ADDRESS_TOTAL: "100",
    };
    const [a, b, c, d] = (await startClusterNodes(4, env)) as [NodeProcess, NodeProcess, NodeProcess, NodeProcess];
    await waitForMesh([a, b, c, d]);

    // session.created for a sign-in on each node, every signature checked by the receiver
    const jars = new Map<NodeProcess, CookieJar>();
    for (const [i, node] of [a, b, c].entries()) jars.set(node, await signIn(node, `hook${i}@example.com`, smtp));
    await waitFor("session.created for each node's sign-in", () => receiver.of("session.created").length >= 3);
    expect(
      receiver
        .of("user.created")
        .map((e) => e.data.email)
        .sort(),
    ).toEqual(["hook0@example.com", "hook1@example.com", "hook2@example.com"]);

    // disable: open sessions refused on every node (poll with a deadline), every way in refused
    const eve = "eve@example.com";
    const eveJars = [await signIn(a, eve, smtp), await signIn(b, eve, smtp), await signIn(c, eve, smtp)];
    const eveId = await idOf(a, eve);
    expect((await admin(a, `/api/admin/users/${eveId}/disable`, { method: "POST" })).status).toBe(200);
    await waitFor(
      "eve's sessions to be refused on every node",
      async () => {
        const answers = await Promise.all([a, b, c].flatMap((n) => eveJars.map((j) => apiMe(n, j))));
        return answers.every((s) => s === 401);
      },
      5_000,
      20,
    );
    // link, then code, on another node: refused with the disabled page, no session
    const jar = new CookieJar();
    const mail = await requestMail(b, jar, eve, smtp);
    const viaLink = await browse(c, jar, pathOf(mail.link), { method: "POST" });
    expect(viaLink.headers.get("location")).toBe("/login?refused=disabled");
    const jar2 = new CookieJar();
    const mail2 = await requestMail(c, jar2, eve, smtp);
    const viaCode = await browse(c, jar2, "/api/auth/email/code", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: eve, code: mail2.code }),
    });
    expect(viaCode.status).toBe(403);
    expect(jar2.get("pwdless_session")).toBeUndefined();
    await waitFor("user.disabled", () => receiver.of("user.disabled").some((e) => e.data.id === eveId));
    expect((await admin(b, `/api/admin/users/${eveId}/enable`, { method: "POST" })).status).toBe(200);
    await waitFor(
      "eve to sign in again after enable",
      async () => (await apiMe(a, await signIn(a, eve, smtp))) === 200,
    );

    // erase on A: D is stopped first and comes back only after the horizon
    const gone = "gone@example.com";
    const goneJar = await signIn(b, gone, smtp);
    expect((await addPasskey(b, goneJar, new SoftAuthenticator(b.url))).status).toBe(201);
    const goneId = await idOf(a, gone);
    await waitFor("D to hold gone's rows", async () => (await fileMentions(d, goneId)).values > 0 || undefined);
    await d.stop("SIGTERM");
    const erased = await admin(a, `/api/admin/users/${goneId}`, { method: "DELETE" });
    expect(erased.status).toBe(200);
    for (const node of [a, b, c]) {
      await waitFor(
        `the erasure on :${node.port}`,
        async () => (await admin(node, `/api/admin/users/${goneId}`)).status === 404,
      );
      await waitFor(`gone's values out of :${node.port}'s file`, async () => {
        const m = await fileMentions(node, goneId);
        const e = await fileMentions(node, gone);
        return m.values === 0 && e.values === 0;
      });
      // and out of its memory: every table an operator can list
      for (const table of ["users", "emails", "sessions", "revocations", "linkUses"]) {
        const rows = await (await node.fetch(`/cluster/tables/${table}.json`)).text();
        expect(rows, `${table} on :${node.port}`).not.toContain(goneId);
        expect(rows, `${table} on :${node.port}`).not.toContain(gone);
      }
    }
    await waitFor("user.deleted", () => receiver.of("user.deleted").some((e) => e.data.id === goneId));

    // the whole cluster killed at once and started again: still gone
    await Promise.all([a, b, c].map((n) => n.stop("SIGKILL")));
    const again = await Promise.all([a, b, c].map((n) => startNode({ env: n.env, port: n.port, dataDir: n.dataDir })));
    await waitForMesh(again);
    for (const node of again) {
      expect((await admin(node, `/api/admin/users/${goneId}`)).status).toBe(404);
      expect((await admin(node, `/api/admin/users?query=${encodeURIComponent(gone)}`)).status).toBe(200);
    }
    // after the horizon the tombstones themselves leave memory and file: not even the keys stay
    await waitFor(
      "the tombstones to be collected from every file",
      async () => {
        for (const n of again) {
          const [m, e] = [await fileMentions(n, goneId), await fileMentions(n, gone)];
          // not a row, and not a byte left in any of the files (old versions in logs included)
          if (m.keys + e.keys + m.files + e.files > 0) return false;
        }
        return true;
      },
      (HORIZON_SECONDS + 30) * 1000,
      500,
    );
    // D, away longer than the horizon, refuses its old rows: one line, exit
    const stale = await startNode({ env: d.env, port: d.port, dataDir: d.dataDir, waitUntil: "none" });
    expect(await stale.waitForExit()).toBe(1);
    expect(stale.log).toMatch(/tables file: .*longer than the tombstone horizon/);
    expect((await fileMentions(d, goneId)).values).toBeGreaterThan(0); // its files are left as they were
    // moved away, the node catches up from empty, without the erased user
    const { renameSync } = await import("node:fs");
    for (const name of readdirSync(d.dataDir).filter((n) => n.startsWith("tables"))) {
      renameSync(path.join(d.dataDir, name), path.join(d.dataDir, `stale-${name}`));
    }
    const fresh = await startNode({ env: d.env, port: d.port, dataDir: d.dataDir });
    await waitForMesh([...again, fresh]);
    expect((await admin(fresh, `/api/admin/users/${goneId}`)).status).toBe(404);
    expect((await admin(fresh, `/api/admin/users/${await idOf(fresh, eve)}`)).status).toBe(200);

    // at least once: the acknowledging node is SIGKILLed right after its answer, the receiver down
    receiver.down = true;
    const [a2] = again as [NodeProcess];
    const late = "late@example.com";
    const lateJar = await signIn(a2, late, smtp);
    await a2.stop("SIGKILL");
    expect(lateJar.get("pwdless_session")).toBeDefined();
    receiver.down = false;
    const restarted = await startNode({ env: a2.env, port: a2.port, dataDir: a2.dataDir });
    const lateId = await idOf(restarted, late);
    await waitFor(
      "session.created for the sign-in acknowledged before the kill",
      () => receiver.of("session.created").some((e) => e.data.userId === lateId),
      30_000,
    );
    expect(receiver.badSignatures).toEqual([]);
    // normally one delivery per event: no webhook-id arrived twice for these sign-ins
    const ids = receiver.of("session.created").map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe("SIGNUP=closed", () => {
  const smtp = new TestSmtpServer();
  afterAll(async () => {
    await stopAllNodes();
    await smtp.stop();
  });

  it("answers an unknown address exactly as a known one, sends it nothing and creates nothing", async () => {
    await smtp.start();
    const env = {
      SMTP_URL: smtp.url,
      ADMIN_API_TOKEN: TOKEN,
      RATE_LIMIT_EMAILS_PER_ADDRESS: "20",
      RATE_LIMIT_OPENINGS_PER_IP: "1000",
    };
    // the known user signs up while sign-up is open, then the node restarts closed
    const open = await startNode({ env });
    await signIn(open, "known@example.com", smtp);
    await open.stop("SIGTERM");
    const node = await startNode({ env: { ...open.env, SIGNUP: "closed" }, dataDir: open.dataDir, port: open.port });
    await waitFor("the restarted node to be ready", async () => (await node.fetch("/readyz")).status === 200, 20_000);

    const answer = async (email: string) => {
      const res = await browse(node, new CookieJar(), "/login", form({ email }));
      return { status: res.status, location: res.headers.get("location"), cookies: res.headers.getSetCookie().length };
    };
    const known = await answer("known@example.com");
    const unknown = await answer("stranger@example.com");
    expect(unknown).toEqual(known);
    await waitFor("the known address's mail", () => smtp.to("known@example.com").length >= 2);
    // the API answers alike too
    const api = async (email: string) => {
      const res = await node.fetch("/api/auth/email", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ email }),
      });
      return { status: res.status, body: await res.json() };
    };
    expect(await api("stranger2@example.com")).toEqual(await api("known@example.com"));
    // guessing codes answers alike too, up to the per-address budget (5 burn a code, 10 an hour):
    // two links, eleven wrong codes; the known address's real codes are never typed
    const guesses = async (email: string, mailed: boolean) => {
      const jar = new CookieJar();
      const answers: string[] = [];
      for (const tries of [5, 6]) {
        const before = smtp.to(email).length;
        await browse(node, jar, "/login", form({ email }));
        if (mailed) await waitFor(`a new mail to ${email}`, () => smtp.to(email).length > before);
        const real = new Set(smtp.to(email).map((m) => codeIn(m)));
        for (let i = 0; i < tries; i++) {
          let guess = String(100_000 + Math.floor(Math.random() * 900_000));
          while (real.has(guess)) guess = String(Number(guess) + 1);
          const res = await browse(node, jar, "/api/auth/email/code", {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ email, code: guess }),
          });
          answers.push(`${res.status} ${((await res.json()) as { error: string }).error}`);
        }
      }
      return answers;
    };
    const knownGuesses = await guesses("known@example.com", true);
    expect(knownGuesses.at(-1)).toBe("429 rate_limited");
    expect(await guesses("stranger3@example.com", false)).toEqual(knownGuesses);
    expect(smtp.to("stranger@example.com")).toHaveLength(0);
    expect(smtp.to("stranger2@example.com")).toHaveLength(0);
    expect(smtp.to("stranger3@example.com")).toHaveLength(0);
    const search = (await (await admin(node, "/api/admin/users?query=stranger")).json()) as { users: unknown[] };
    expect(search.users).toHaveLength(0);
    // an invitation does not open a closed site; the existing user still signs in
    expect(
      (
        await admin(node, "/api/admin/invites", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ email: "invited@example.com" }),
        })
      ).status,
    ).toBe(201);
    await signIn(node, "known@example.com", smtp);
  });

  it("SIGNUP=invite lets in invited addresses and allowed domains only", async () => {
    const node = await startNode({
      env: { SMTP_URL: smtp.url, ADMIN_API_TOKEN: TOKEN, SIGNUP: "invite", SIGNUP_ALLOWED_DOMAINS: "*.corp.example" },
    });
    await browse(node, new CookieJar(), "/login", form({ email: "nobody@example.com" }));
    const invite = await admin(node, "/api/admin/invites", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: "guest@example.com" }),
    });
    expect(invite.status).toBe(201);
    await waitFor("the invitation mail", () => smtp.to("guest@example.com").some((m) => /invited/.test(m.subject)));
    await signIn(node, "guest@example.com", smtp);
    await signIn(node, "ada@eng.corp.example", smtp);
    expect(smtp.to("nobody@example.com")).toHaveLength(0);
  });
});
