import { describe, expect, it } from "vitest";
import { ClusterStore, LocalAtomics, type ClusterAtomics } from "#cluster";
import type { ClusterPort } from "#app/lib/context.server.ts";
import { ProviderRows } from "#app/lib/provider/rows.server.ts";
import { SingleUse } from "#app/lib/provider/single-use.server.ts";
import { fakeClusterPort } from "#tests/support/fake-cluster.ts";

const log = { info: () => undefined, warn: () => undefined, error: () => undefined, child: () => log };
const now = () => Date.now();

/** Two nodes whose stores see each other's writes at once and whose requests reach each other's handlers. */
function twoNodes(atomics?: ClusterAtomics) {
  const handlers = new Map<string, Map<string, (body: unknown, from: string) => Promise<unknown>>>();
  const stores = [new ClusterStore({ nodeId: "node-a" }), new ClusterStore({ nodeId: "node-b" })] as const;
  const reachable = { value: true };
  const ports = stores.map((store) => {
    handlers.set(store.nodeId, new Map());
    return fakeClusterPort(store, {
      handle: (method, handler) => void handlers.get(store.nodeId)!.set(method, handler),
      request: async (to, method, body) => {
        if (!reachable.value) throw new Error("unreachable");
        return handlers.get(to)!.get(method)!(body, store.nodeId);
      },
      ...(atomics ? { atomics } : {}),
    });
  });
  // replication: each local write is applied on the other store
  stores[0].onLocalWrite((record) => stores[1].applyRemote(record));
  stores[1].onLocalWrite((record) => stores[0].applyRemote(record));
  const sides = ports.map((port: ClusterPort) => {
    const rows = new ProviderRows(port, { now, familyLifeMs: 60_000, arrivalWaitMs: 50 });
    return { rows, uses: new SingleUse(port, rows, log, now) };
  });
  return { a: sides[0]!, b: sides[1]!, reachable };
}

const payload = { grantId: "g1", clientId: "web", exp: Math.floor(Date.now() / 1000) + 60 };

describe("single use of codes and refresh tokens, cluster-wide", () => {
  it("gossip mode: the issuing node decides; the other asks it; concurrent uses have one winner", async () => {
    const { a, b } = twoNodes();
    a.rows.put("AuthorizationCode", "code-1", payload, 60);
    expect(b.rows.table("AuthorizationCode").get("code-1")?.n).toBe("node-a");
    const outcomes = await Promise.all([
      b.uses.consume("AuthorizationCode", "code-1"),
      a.uses.consume("AuthorizationCode", "code-1"),
    ]);
    expect(outcomes.sort()).toEqual(["ok", "used"]);
    expect(await b.uses.consume("AuthorizationCode", "code-1")).toBe("used");
    expect(b.rows.usedAt("AuthorizationCode", "code-1")).toBeTypeOf("number");
  });

  it("gossip mode: a re-save on another node keeps the issuer as decider", async () => {
    const { a, b } = twoNodes();
    a.rows.put("DeviceCode", "device-1", { ...payload, userCode: "BCDFGHJK" }, 600);
    b.rows.put("DeviceCode", "device-1", { ...payload, userCode: "BCDFGHJK", accountId: "u1" }, 600);
    expect(a.rows.table("DeviceCode").get("device-1")?.n).toBe("node-a");
    expect(await b.uses.consume("DeviceCode", "device-1")).toBe("ok");
    expect(await a.uses.consume("DeviceCode", "device-1")).toBe("used");
  });

  it("gossip mode: when the issuer cannot be reached, nobody decides (unavailable), and the use stays free", async () => {
    const { a, b, reachable } = twoNodes();
    a.rows.put("RefreshToken", "rt-1", payload, 60);
    reachable.value = false;
    expect(await b.uses.consume("RefreshToken", "rt-1")).toBe("unavailable");
    reachable.value = true;
    expect(await b.uses.consume("RefreshToken", "rt-1")).toBe("ok");
  });

  it("Redis mode: the shared claim decides, whichever node wrote the row", async () => {
    // one claim store for both nodes: what Redis's SET NX gives
    const shared = new LocalAtomics(now);
    const atomics: ClusterAtomics = {
      scope: "cluster",
      claimOnce: (...args) => shared.claimOnce(...args),
      reserve: (...args) => shared.reserve(...args),
      release: (...args) => shared.release(...args),
    };
    const { a, b, reachable } = twoNodes(atomics);
    a.rows.put("RefreshToken", "rt-2", payload, 60);
    reachable.value = false; // no node asks another in Redis mode
    const outcomes = await Promise.all([
      a.uses.consume("RefreshToken", "rt-2"),
      b.uses.consume("RefreshToken", "rt-2"),
    ]);
    expect(outcomes.sort()).toEqual(["ok", "used"]);
  });

  it("revoking a family is one row that every node honours", () => {
    const { a, b } = twoNodes();
    expect(a.rows.revokeFamily("g1", "replayed")).toBe(true);
    expect(b.rows.isRevoked("g1")).toBe(true);
    expect(b.rows.revokeFamily("g1", "again")).toBe(false);
  });

  it("waits a moment for a row still on its way, and gives up on one that never comes", async () => {
    const { a, b } = twoNodes();
    const late = b.rows.get("AccessToken", "at-arriving-soon");
    setTimeout(() => a.rows.put("AccessToken", "at-arriving-soon", payload, 60), 10);
    expect((await late)?.g).toBe("g1");
    expect(await b.rows.get("AccessToken", "never-written-1")).toBeUndefined();
    expect(await b.rows.get("AccessToken", "bad id!")).toBeUndefined();
  });

  it("collects expired rows, revoked families and grants of ended sessions, on the node that wrote them", () => {
    let clock = Date.now();
    const store = new ClusterStore({ nodeId: "node-a" });
    const rows = new ProviderRows(fakeClusterPort(store), { now: () => clock, familyLifeMs: 120_000 });
    rows.put("AccessToken", "at-expires", { grantId: "g1" }, 60);
    rows.put("RefreshToken", "rt-revoked", { grantId: "g2" }, 3600);
    rows.put("RefreshToken", "rt-live", { grantId: "g3" }, 3600);
    rows.put("Grant", "g3", { accountId: "u", clientId: "web" }, 3600);
    rows.bindGrant("g3", "sid-live");
    rows.put("Grant", "g4", { accountId: "u", clientId: "web" }, 3600);
    rows.bindGrant("g4", "sid-ended");
    rows.revokeFamily("g2", "replayed");
    clock += 61_000;
    expect(rows.prune((sid) => sid === "sid-live")).toBe(3);
    expect(rows.table("AccessToken").has("at-expires")).toBe(false);
    expect(rows.table("RefreshToken").has("rt-revoked")).toBe(false);
    expect(rows.table("RefreshToken").has("rt-live")).toBe(true);
    expect(rows.table("Grant").has("g3")).toBe(true);
    expect(rows.table("Grant").has("g4")).toBe(false);
    // the revocation outlives its tokens, then goes too
    clock += 60_000;
    rows.prune();
    expect(rows.isRevoked("g2")).toBe(false);
  });
});

describe("the adapter's view of revoked families and ended sessions", () => {
  it("refuses grants and tokens of a revoked family or an ended session, never the interaction that names them", async () => {
    const { adapterFor } = await import("#app/lib/provider/adapter.server.ts");
    const store = new ClusterStore({ nodeId: "node-a" });
    const port = fakeClusterPort(store);
    const rows = new ProviderRows(port, { now, familyLifeMs: 60_000 });
    const active = new Set(["sid-1"]);
    const deps = {
      rows,
      singleUse: new SingleUse(port, rows, log, now),
      audit: { record: () => undefined },
      services: { sessions: { findActive: (sid: string) => (active.has(sid) ? {} : undefined) } },
    } as unknown as Parameters<typeof adapterFor>[0];
    const Adapter = adapterFor(deps);
    const [grants, tokens, interactions] = [
      new Adapter("Grant"),
      new Adapter("AccessToken"),
      new Adapter("Interaction"),
    ];
    await grants.upsert("grant-1", { accountId: "u", clientId: "web" }, 60);
    rows.bindGrant("grant-1", "sid-1");
    await tokens.upsert("token-1", { grantId: "grant-1", clientId: "web" }, 60);
    await interactions.upsert("interaction-1", { grantId: "grant-1", params: {} }, 60);
    expect(await tokens.find("token-1")).toMatchObject({ grantId: "grant-1" });

    active.delete("sid-1");
    expect(await grants.find("grant-1")).toBeUndefined();
    expect(await tokens.find("token-1")).toBeUndefined();
    active.add("sid-1");
    rows.revokeFamily("grant-1", "replayed");
    expect(await grants.find("grant-1")).toBeUndefined();
    expect(await tokens.find("token-1")).toBeUndefined();
    // a new grant will be made for this authorization: the interaction itself goes on
    expect(await interactions.find("interaction-1")).toMatchObject({ grantId: "grant-1" });
  });

  it("erases a person's grants, tokens and provider sessions, revoking the families, and leaves others' alone", () => {
    const store = new ClusterStore({ nodeId: "node-a" });
    const rows = new ProviderRows(fakeClusterPort(store), { now, familyLifeMs: 60_000 });
    rows.put("Grant", "g-erased", { accountId: "u1", clientId: "web", iat: 1, openid: { scope: "openid" } }, 60);
    rows.put("RefreshToken", "rt-erased", { grantId: "g-erased", accountId: "u1" }, 60);
    rows.put("Session", "s-erased", { uid: "su1", accountId: "u1" }, 60);
    rows.put("Interaction", "i-erased", { session: { accountId: "u1" } }, 60);
    rows.put("Grant", "g-kept", { accountId: "u2", clientId: "web" }, 60);
    rows.put("RefreshToken", "rt-kept", { grantId: "g-kept", accountId: "u2" }, 60);
    expect(rows.grantsFor(new Set(["u1"]))).toEqual([
      { clientId: "web", scope: "openid", since: 1000, revoked: false },
    ]);
    expect(rows.eraseAccount(new Set(["u1"]))).toBe(4);
    expect(rows.isRevoked("g-erased")).toBe(true);
    for (const [model, id] of [
      ["Grant", "g-erased"],
      ["RefreshToken", "rt-erased"],
      ["Session", "s-erased"],
      ["Interaction", "i-erased"],
    ] as const) {
      expect(rows.table(model).has(id), id).toBe(false);
    }
    expect(rows.table("Grant").has("g-kept")).toBe(true);
    expect(rows.table("RefreshToken").has("rt-kept")).toBe(true);
  });
});
