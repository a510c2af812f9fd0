// Deleting an account re-confirmed with a passkey instead of an emailed code, over HTTP with a
// software authenticator (tests/support/soft-authenticator.ts): only the person's own passkey, with
// user verification, on a fresh challenge sealed for them, deletes; every other answer deletes nothing.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CookieJar } from "../support/cookie-jar";
import { browse, signIn } from "../support/flows";
import { startNode, stopAllNodes, type NodeProcess } from "../support/node";
import {
  addPasskey,
  passkeySignIn,
  postJson,
  SoftAuthenticator,
  type RequestOptions,
} from "../support/soft-authenticator";
import { waitFor } from "../support/wait";

const TOKEN = randomBytes(32).toString("base64url");
const json = postJson;

describe("deleting an account with a passkey", () => {
  let node: NodeProcess;

  beforeAll(async () => {
    node = await startNode({
      env: { ADMIN_API_TOKEN: TOKEN, RATE_LIMIT_REQUESTS_PER_IP: "1000", RATE_LIMIT_OPENINGS_PER_IP: "1000" },
    });
  });
  afterAll(stopAllNodes);

  /** A signed-in person with a passkey added through /account/passkeys (a real signature). */
  async function personWithPasskey(email: string): Promise<{ jar: CookieJar; key: SoftAuthenticator; id: string }> {
    const jar = await signIn(node, email);
    const key = new SoftAuthenticator(node.url);
    const added = await addPasskey(node, jar, key);
    expect(added.status, await added.clone().text()).toBe(201);
    return { jar, key, id: await idOf(jar) };
  }

  async function idOf(jar: CookieJar): Promise<string> {
    const res = await browse(node, jar.clone(), "/account/data");
    expect(res.status).toBe(200);
    return ((await res.json()) as { user: { id: string } }).user.id;
  }

  async function deleteOptions(jar: CookieJar): Promise<{ options: RequestOptions; state: string }> {
    const res = await browse(node, jar, "/account/delete/passkey", json({ step: "options" }));
    expect(res.status).toBe(200);
    return (await res.json()) as { options: RequestOptions; state: string };
  }

  /** Delete the account of `jar` with this answer to this state; the node's answer. */
  const attempt = (jar: CookieJar, state: string, response: unknown) =>
    browse(node, jar, "/account/delete/passkey", json({ step: "delete", state, response }));

  const exists = async (id: string) =>
    (await node.fetch(`/api/admin/users/${id}`, { headers: { Authorization: `Bearer ${TOKEN}` } })).status === 200;
  const refusals = () =>
    node
      .events()
      .filter((e) => e.audit === true && e.event === "refused")
      .map((e) => `${String(e.reason)}: ${String(e.detail ?? "")}`);

  it("asks for the person's own passkeys only, with user verification, and deletes with one", async () => {
    const ann = await personWithPasskey("ann-deletes@example.com");
    await personWithPasskey("someone-else@example.com"); // another account's passkey must not be offered
    const { options, state } = await deleteOptions(ann.jar);
    expect(options.userVerification).toBe("required");
    expect(options.allowCredentials?.map((c) => c.id)).toEqual(
      ann.key.credentials.map((c) => c.id.toString("base64url")),
    );
    expect(state).toMatch(/^Fe26\.2\*/);

    const res = await attempt(ann.jar, state, ann.key.get(options));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ deleted: true, redirectTo: "/login?deleted=1" });
    expect(ann.jar.header()).not.toContain("pwdless_session=");
    expect(await exists(ann.id)).toBe(false);
    // the account and its passkey are gone: the passkey no longer signs in
    const again = await passkeySignIn(node, ann.key, new CookieJar());
    expect(again.status).toBe(400);
    await waitFor("the account-erased audit line", () =>
      node.events().some((e) => e.event === "account-erased" && e.uid === ann.id && e.by === "self"),
    );
    // the deletion notice went to the address
    await waitFor("the deletion notice", async () => {
      const { messages } = (await (await node.fetch("/dev/mailbox.json?to=ann-deletes%40example.com")).json()) as {
        messages: { subject: string }[];
      };
      return messages.some((m) => /was deleted/.test(m.subject));
    });
  });

  it("refuses another account's passkey, no user verification, a used or foreign challenge, and no session: nothing is deleted", async () => {
    const bob = await personWithPasskey("bob-stays@example.com");
    const eve = await personWithPasskey("eve-tries@example.com");

    // Eve's passkey on Bob's challenge (Eve's authenticator signs Bob's challenge)
    let { options, state } = await deleteOptions(bob.jar);
    const foreign = eve.key.get({ ...options, allowCredentials: [] });
    let res = await attempt(bob.jar, state, foreign);
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: string }).error).toBe("forbidden");

    // Bob's own passkey, but only user presence (no PIN or biometrics)
    ({ options, state } = await deleteOptions(bob.jar));
    const presenceOnly = bob.key.get(options, { verified: false });
    res = await attempt(bob.jar, state, presenceOnly);
    expect(res.status).toBe(400);
    // that challenge was used by the refused try: a good answer to it is refused too
    res = await attempt(bob.jar, state, bob.key.get(options));
    expect(res.status).toBe(400);

    // a sign-in challenge, and a challenge sealed for Eve, do not delete Bob
    const signInChallenge = (await (await node.fetch("/auth/passkey", json({ step: "options" }))).json()) as {
      options: RequestOptions;
      state: string;
    };
    res = await attempt(bob.jar, signInChallenge.state, bob.key.get(signInChallenge.options));
    expect(res.status).toBe(400);
    const evesChallenge = await deleteOptions(eve.jar);
    res = await attempt(bob.jar, evesChallenge.state, bob.key.get({ ...evesChallenge.options, allowCredentials: [] }));
    expect(res.status).toBe(400);

    // without a session: 401, whatever the answer
    ({ options, state } = await deleteOptions(bob.jar));
    res = await node.fetch("/account/delete/passkey", json({ step: "delete", state, response: bob.key.get(options) }));
    expect(res.status).toBe(401);

    expect(await exists(bob.id)).toBe(true);
    expect(await exists(eve.id)).toBe(true);
    expect((await browse(node, bob.jar.clone(), "/auth/refresh", { method: "POST" })).status).toBe(200);
    await waitFor("a refusal line for each", () => {
      const lines = refusals();
      return (
        lines.some((l) => l.startsWith("delete-passkey-not-yours")) &&
        lines.some((l) => l.startsWith("delete-passkey-verification")) &&
        lines.some((l) => l === "delete-passkey-challenge: used already") &&
        lines.some((l) => l === "delete-passkey-challenge: a sign-in challenge used to reconfirm") &&
        lines.some((l) => l === "delete-passkey-challenge: challenge of another user")
      );
    });

    // with the right answer to a fresh challenge, Bob can still delete
    ({ options, state } = await deleteOptions(bob.jar));
    res = await attempt(bob.jar, state, bob.key.get(options));
    expect(res.status).toBe(200);
    expect(await exists(bob.id)).toBe(false);
  });

  it("tells a person without a passkey to use the emailed code", async () => {
    const jar = await signIn(node, "no-passkey@example.com");
    const res = await browse(node, jar, "/account/delete/passkey", json({ step: "options" }));
    expect(res.status).toBe(409);
    expect(((await res.json()) as { message: string }).message).toContain("emailed code");
    expect((await browse(node, jar, "/account/delete")).status).toBe(200);
  });
});
