// Operating the user base, method by method on one node: a disabled user is refused by a passkey
// (software authenticator, real signatures) and by a social provider (the node's development OpenID
// provider), as by a link and a code (operate.test.ts); a passkey added or removed is mailed to the
// account; SIGNUP=closed refuses a social sign-up; and an address change reaches webhooks as user.updated.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CookieJar } from "../support/cookie-jar";
import { browse, form, signIn } from "../support/flows";
import { startNode, stopAllNodes, type NodeProcess } from "../support/node";
import { signInWithDev } from "../support/oauth";
import { codeIn } from "../support/smtp";
import { addPasskey, passkeySignIn, SoftAuthenticator } from "../support/soft-authenticator";
import { waitFor } from "../support/wait";
import { WebhookReceiver, webhookSecret } from "../support/webhook-receiver";

const TOKEN = randomBytes(32).toString("base64url");

function admin(node: NodeProcess, pathname: string, init: RequestInit = {}): Promise<Response> {
  return node.fetch(pathname, { ...init, headers: { Authorization: `Bearer ${TOKEN}` } });
}

async function idOf(node: NodeProcess, email: string): Promise<string | undefined> {
  const res = await admin(node, `/api/admin/users?query=${encodeURIComponent(email)}`);
  const { users } = (await res.json()) as { users: { id: string; email: string }[] };
  return users.find((u) => u.email === email)?.id;
}

async function mails(node: NodeProcess, to: string): Promise<{ subject: string; text: string; to: string }[]> {
  const res = await node.fetch(`/dev/mailbox.json?to=${encodeURIComponent(to)}`);
  return ((await res.json()) as { messages: { subject: string; text: string; to: string }[] }).messages;
}

describe("a disabled user, by every method", () => {
  let node: NodeProcess;
  beforeAll(async () => {
    node = await startNode({
      env: { ADMIN_API_TOKEN: TOKEN, RATE_LIMIT_REQUESTS_PER_IP: "1000", RATE_LIMIT_OPENINGS_PER_IP: "1000" },
    });
  });
  afterAll(stopAllNodes);

  it("is refused by a passkey and by a social provider, and signs in again once enabled", async () => {
    const email = "locked-out@example.com";
    const jar = await signIn(node, email);
    const key = new SoftAuthenticator(node.url);
    expect((await addPasskey(node, jar, key)).status).toBe(201);
    // the same address through the development OpenID provider: the same account
    expect((await signInWithDev(node, email)).headers.get("location")).toBe("/account");
    // both work before the disable
    expect((await passkeySignIn(node, key, new CookieJar())).status).toBe(200);
    const id = (await idOf(node, email))!;

    expect((await admin(node, `/api/admin/users/${id}/disable`, { method: "POST" })).status).toBe(200);
    const byPasskey = new CookieJar();
    const refused = await passkeySignIn(node, key, byPasskey);
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { message: string }).message).toContain("disabled");
    expect(byPasskey.get("pwdless_session")).toBeUndefined();
    const bySocial = new CookieJar();
    const social = await signInWithDev(node, email, bySocial);
    expect(social.status).toBe(302);
    expect(social.headers.get("location")).toBe("/login?refused=disabled");
    expect(bySocial.get("pwdless_session")).toBeUndefined();
    const page = await (await node.fetch("/login?refused=disabled")).text();
    expect(page).toContain("This account is disabled");
    await waitFor("a refusal line per method", () => {
      const methods = node
        .events()
        .filter((e) => e.audit === true && e.event === "refused" && e.reason === "sign-in-disabled")
        .map((e) => e.method);
      return methods.includes("passkey") && methods.includes("dev");
    });

    expect((await admin(node, `/api/admin/users/${id}/enable`, { method: "POST" })).status).toBe(200);
    expect((await passkeySignIn(node, key, new CookieJar())).status).toBe(200);
    expect((await signInWithDev(node, email)).headers.get("location")).toBe("/account");
  });
});

describe("passkey notices", () => {
  afterAll(stopAllNodes);

  it("mails the account's address when a passkey is added and when it is removed", async () => {
    const node = await startNode();
    const email = "noticed@example.com";
    const jar = await signIn(node, email);
    const key = new SoftAuthenticator(node.url);
    expect((await addPasskey(node, jar, key, "Desk key")).status).toBe(201);
    const subjects = async () => (await mails(node, email)).map((m) => m.subject);
    await waitFor("the added notice", async () => (await subjects()).some((s) => /A passkey was added/.test(s)));
    const id = key.credentials[0]!.id.toString("base64url");
    const removed = await browse(node, jar, "/account", form({ intent: "remove-passkey", passkey: id }));
    expect(removed.status).toBe(302);
    await waitFor("the removed notice", async () => (await subjects()).some((s) => /A passkey was removed/.test(s)));
    const text = (await mails(node, email)).find((m) => /removed/.test(m.subject))!.text;
    expect(text).toContain('"Desk key"');
  });
});

describe("SIGNUP=closed and social sign-in", () => {
  afterAll(stopAllNodes);

  it("refuses a social sign-up without creating an account, and signs in an existing user", async () => {
    const open = await startNode({ env: { ADMIN_API_TOKEN: TOKEN } });
    await signIn(open, "member@example.com");
    await open.stop("SIGTERM");
    const node = await startNode({ env: { ...open.env, SIGNUP: "closed" }, dataDir: open.dataDir, port: open.port });

    const jar = new CookieJar();
    const stranger = await signInWithDev(node, "social-stranger@example.com", jar);
    expect(stranger.headers.get("location")).toBe("/login?refused=signup");
    expect(jar.get("pwdless_session")).toBeUndefined();
    expect(await idOf(node, "social-stranger@example.com")).toBeUndefined();
    expect((await signInWithDev(node, "member@example.com")).headers.get("location")).toBe("/account");
  });
});

describe("webhooks for an address change", () => {
  const secret = webhookSecret();
  const receiver = new WebhookReceiver(secret);
  afterAll(async () => {
    await stopAllNodes();
    await receiver.stop();
  });

  it("sends user.updated with the new address and the same id, and the old address a notice", async () => {
    await receiver.start();
    const node = await startNode({
      env: { ADMIN_API_TOKEN: TOKEN, WEBHOOK_URLS: receiver.url, WEBHOOK_SECRET: secret },
    });
    const jar = await signIn(node, "moving@example.com");
    const id = (await idOf(node, "moving@example.com"))!;
    await waitFor("user.created", () => receiver.of("user.created").some((e) => e.data.id === id));

    expect((await browse(node, jar, "/account/email", form({ email: "moved@example.com" }))).status).toBe(302);
    const confirm = await waitFor("the confirmation mail", async () => (await mails(node, "moved@example.com"))[0]);
    const done = await browse(node, jar, "/account/email", form({ intent: "code", code: codeIn(confirm) }));
    expect(done.headers.get("location")).toBe("/account?addressChanged=1");

    const updated = await waitFor("user.updated", () => receiver.of("user.updated").find((e) => e.data.id === id));
    expect(updated.data).toEqual({ id, email: "moved@example.com" });
    expect(receiver.of("user.created").filter((e) => e.data.id === id)).toHaveLength(1);
    expect(receiver.badSignatures).toEqual([]);
    expect(await idOf(node, "moved@example.com")).toBe(id);
    expect(await idOf(node, "moving@example.com")).toBeUndefined();
    await waitFor("the notice to the old address", async () =>
      (await mails(node, "moving@example.com")).some((m) => /was changed/.test(m.subject)),
    );
  });
});
