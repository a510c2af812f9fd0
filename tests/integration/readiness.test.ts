/**
 * When a node says it is ready (/readyz): alone at once when it has nobody to catch up from,
 * after its first catch-up when it has peers, and after CLUSTER_READY_TIMEOUT_SECONDS when its
 * configured peers never answer.
 */
import { afterEach, describe, expect, it } from "vitest";
import { freePort } from "../support/ports";
import { startNode, stopAllNodes, tempDir, testSecret, uniqueName, type NodeProcess } from "../support/node";
import { waitFor } from "../support/wait";

type Status = { ready: boolean; readyReason: string | null };

async function status(node: NodeProcess): Promise<Status> {
  return (await (await node.fetch("/cluster.json")).json()) as Status;
}

const logged = (node: NodeProcess, msg: string) => node.events().some((e) => e.msg === msg);
const WAITING = "cluster: waiting for a first catch-up from a peer before reporting ready";

describe("readiness", () => {
  afterEach(stopAllNodes);

  it("a lone node on an empty DATA_DIR is ready once the discovery window has passed with nobody found", async () => {
    // the quick start: local discovery in a registry of its own, no peers, a fresh DATA_DIR
    const node = await startNode({
      env: { CLUSTER_DISCOVERY: "local", CLUSTER_REGISTRY_DIR: tempDir("pwdless-registry") },
    });
    await waitFor("the lone node to be ready", async () => (await node.fetch("/readyz")).status === 200, 30_000);
    expect(await status(node)).toMatchObject({ ready: true, readyReason: "alone" });
    expect(logged(node, "cluster: ready alone, no peer to catch up from")).toBe(true);
    expect(logged(node, WAITING)).toBe(false);
    const metrics = await (await node.fetch("/metrics")).text();
    expect(metrics).toMatch(/^pwdless_cluster_ready 1$/m);
  });

  it("a node with a configured peer that is not there waits for it, and is ready once it caught up from it", async () => {
    const clusterName = uniqueName("ready");
    const secret = testSecret();
    const peerPort = await freePort();
    const shared = { CLUSTER_NAME: clusterName, SECRET_KEY_BASE: secret };
    const a = await startNode({
      env: { ...shared, CLUSTER_PEERS: `127.0.0.1:${peerPort}`, CLUSTER_READY_TIMEOUT_SECONDS: "3600" },
    });
    // the discovery window is over and the peer is known: not ready, and says why
    await waitFor("A to say it waits for a peer", () => logged(a, WAITING), 30_000);
    expect((await a.fetch("/readyz")).status).toBe(503);
    expect(await status(a)).toMatchObject({ ready: false, readyReason: null });

    const b = await startNode({ env: { ...shared, CLUSTER_PORT: String(peerPort) } });
    await waitFor("A to catch up from B and be ready", async () => (await a.fetch("/readyz")).status === 200, 60_000);
    expect(await status(a)).toMatchObject({ ready: true, readyReason: "caught-up" });
    // B has no peer configured: it was ready alone, or caught up from A once A dialled it
    expect((await b.fetch("/readyz")).status).toBe(200);
  });

  it("a node whose configured peer never answers is ready after CLUSTER_READY_TIMEOUT_SECONDS", async () => {
    const unreachable = await freePort();
    const node = await startNode({
      env: { CLUSTER_PEERS: `127.0.0.1:${unreachable}`, CLUSTER_READY_TIMEOUT_SECONDS: "8" },
    });
    await waitFor("the node to say it waits for a peer", () => logged(node, WAITING), 30_000);
    expect((await node.fetch("/readyz")).status).toBe(503);
    await waitFor("the node to give up waiting", async () => (await node.fetch("/readyz")).status === 200, 60_000);
    expect(await status(node)).toMatchObject({ ready: true, readyReason: "peer-wait-timeout" });
    expect(logged(node, "cluster: ready without a catch-up: no peer could be caught up from in time")).toBe(true);
  });
});
