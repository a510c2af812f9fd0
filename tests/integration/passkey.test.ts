import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { status } from "../support/cluster";
import { CookieJar } from "../support/cookie-jar";
import { browse, form, signIn } from "../support/flows";
import { startNode, stopAllNodes, type NodeProcess } from "../support/node";
import { waitFor } from "../support/wait";

const json = (body: unknown) => ({
  method: "POST",
  headers: { "Content-Type": "application/json" },
  body: JSON.stringify(body),
});

/** A registration answer shaped right, but signed by no authenticator. */
const fakeRegistration = {
  id: "AAAAAAAAAAAAAAAAAAAAAA",
  rawId: "AAAAAAAAAAAAAAAAAAAAAA",
  type: "public-key",
  response: { clientDataJSON: "e30", attestationObject: "oA" },
  clientExtensionResults: {},
};

describe("passkey ceremonies over HTTP: options, single-use challenges, refusals", () => {
  let node: NodeProcess;
  let jar: CookieJar;

  beforeAll(async () => {
    node = await startNode({ env: { RATE_LIMIT_REQUESTS_PER_IP: "1000", RATE_LIMIT_OPENINGS_PER_IP: "1000" } });
    jar = await signIn(node, "keys@example.com");
  });
  afterAll(stopAllNodes);

  const refusals = () => node.events().filter((e) => e.audit === true && e.event === "refused");

  it("offers sign-in options for APP_URL's host, user verification preferred, any discoverable passkey", async () => {
    const res = await node.fetch("/auth/passkey", json({ step: "options" }));
    expect(res.status).toBe(200);
    const { options, state } = (await res.json()) as {
      options: { rpId: string; challenge: string; userVerification: string; allowCredentials?: unknown[] };
      state: string;
    };
    expect(options.rpId).toBe("127.0.0.1");
    expect(options.userVerification).toBe("preferred");
    expect(options.allowCredentials ?? []).toEqual([]);
    expect(options.challenge.length).toBeGreaterThanOrEqual(32);
    expect(state).toMatch(/^Fe26\.2\*/);
    // a new challenge each time
    const again = (await (await node.fetch("/auth/passkey", json({ step: "options" }))).json()) as typeof options;
    expect(again).not.toEqual(options);
  });

  it("offers registration only to a signed-in person, for a discoverable credential", async () => {
    expect((await node.fetch("/account/passkeys", json({ step: "options" }))).status).toBe(401);
    const res = await browse(node, jar, "/account/passkeys", json({ step: "options" }));
    expect(res.status).toBe(200);
    const { options } = (await res.json()) as {
      options: { rp: { id: string }; user: { name: string }; authenticatorSelection: Record<string, unknown> };
    };
    expect(options.rp.id).toBe("127.0.0.1");
    expect(options.user.name).toBe("keys@example.com");
    expect(options.authenticatorSelection).toMatchObject({ residentKey: "required", userVerification: "preferred" });
  });

  it("uses a challenge once: the second answer with the same state is refused as used", async () => {
    const { state } = (await (await browse(node, jar, "/account/passkeys", json({ step: "options" }))).json()) as {
      state: string;
    };
    const first = await browse(
      node,
      jar,
      "/account/passkeys",
      json({ step: "add", state, response: fakeRegistration }),
    );
    expect(first.status).toBe(400);
    await waitFor("the first refusal", () => refusals().some((e) => e.reason === "passkey-add-verification"));
    const second = await browse(
      node,
      jar,
      "/account/passkeys",
      json({ step: "add", state, response: fakeRegistration }),
    );
    expect(second.status).toBe(400);
    expect(((await second.json()) as { error: string }).error).toBe("invalid_request");
    await waitFor("the second refusal", () =>
      refusals().some((e) => e.reason === "passkey-add-challenge" && e.detail === "used already"),
    );
    expect((await status(node)).tables.passkeys ?? 0).toBe(0);
  });

  it("refuses a sign-in challenge used to register, and another user's registration challenge", async () => {
    const { state: signInState } = (await (await node.fetch("/auth/passkey", json({ step: "options" }))).json()) as {
      state: string;
    };
    const crossed = await browse(
      node,
      jar,
      "/account/passkeys",
      json({ step: "add", state: signInState, response: fakeRegistration }),
    );
    expect(crossed.status).toBe(400);
    const other = await signIn(node, "other-keys@example.com");
    const { state: othersState } = (await (
      await browse(node, other, "/account/passkeys", json({ step: "options" }))
    ).json()) as {
      state: string;
    };
    const foreign = await browse(
      node,
      jar,
      "/account/passkeys",
      json({ step: "add", state: othersState, response: fakeRegistration }),
    );
    expect(foreign.status).toBe(400);
    await waitFor("both refusals", () => refusals().filter((e) => e.reason === "passkey-add-challenge").length >= 3);
  });

  it("answers a removed or unknown passkey's removal with 404, and keeps the page working", async () => {
    const res = await browse(node, jar, "/account", form({ intent: "remove-passkey", passkey: "nope" }));
    expect(res.status).toBe(404);
    expect((await browse(node, jar, "/account")).status).toBe(200);
  });
});
