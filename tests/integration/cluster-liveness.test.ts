// Failure seen within two seconds, as an operator watches it: three real nodes; one is SIGKILLed,
// another frozen (SIGSTOP: its connections stay open, it just stops answering, as a hung host
// does). The others show each down on /cluster, /cluster.json and /metrics, route around the
// frozen one at once, and take it back, on the same connection, when it thaws (SIGCONT).
import { afterAll, describe, expect, it } from "vitest";
import { clusterEnv, startClusterNodes, status, waitForMesh } from "../support/cluster";
import { CookieJar } from "../support/cookie-jar";
import { browse, pathOf, requestLink } from "../support/flows";
import { stopAllNodes, type NodeProcess } from "../support/node";
import { waitFor } from "../support/wait";

interface LivePeer {
  id: string;
  connected: boolean;
  up?: boolean;
  silentMs?: number | null;
}
interface LivenessStatus {
  peers: LivePeer[];
  liveness: { down: number; up: number; downAfterMs: number };
}

const view = async (node: NodeProcess) => (await (await node.fetch("/cluster.json")).json()) as LivenessStatus;
const peerOn = async (node: NodeProcess, id: string) => (await view(node)).peers.find((p) => p.id === id);

/** Poll /cluster.json until `check` holds for the peer; returns the ms it took from `since`. */
async function shownOn(node: NodeProcess, id: string, what: string, since: number, check: (p: LivePeer) => boolean) {
  await waitFor(
    what,
    async () => {
      const peer = await peerOn(node, id);
      return peer !== undefined && check(peer);
    },
    15_000,
    20,
  );
  return Math.round(performance.now() - since);
}

function metric(text: string, name: string, peer: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{peer="${peer}"}`));
  return line === undefined ? undefined : Number(line.split(" ").pop());
}

describe("a peer that dies or freezes", () => {
  afterAll(stopAllNodes);

  it("is shown down within ~2 s, routed around, and taken back on the same connection when it answers again", async () => {
    const nodes = await startClusterNodes(3, clusterEnv());
    await waitForMesh(nodes, 60_000);
    const [a, b, c] = nodes as [NodeProcess, NodeProcess, NodeProcess];
    const [bId, cId] = [await b.nodeId(), await c.nodeId()];
    // a link B sent, to open on A while B is frozen
    const jar = new CookieJar();
    const link = await requestLink(b, jar, "frozen-issuer@example.com");

    // SIGKILL: the connection closes with the process
    const killedAt = performance.now();
    c.proc.kill("SIGKILL");
    const killMs = await shownOn(a, cId, "C shown down on A", killedAt, (p) => p.up === false);
    console.info(`liveness: a SIGKILLed peer shown down on A after ${killMs} ms (goal ≤ 2000 ms)`);
    const page = await (await a.fetch("/cluster")).text();
    expect(page).toContain(cId.slice(-12));
    expect(page).toContain("down (disconnected)");
    expect(metric(await (await a.fetch("/metrics")).text(), "pwdless_cluster_peer_up", cId)).toBe(0);

    // SIGSTOP: the connection stays open, nothing answers
    let disconnected = false;
    const frozenAt = performance.now();
    b.proc.kill("SIGSTOP");
    try {
      const freezeMs = await shownOn(a, bId, "frozen B shown down on A", frozenAt, (p) => {
        if (!p.connected) disconnected = true;
        return p.up === false;
      });
      console.info(
        `liveness: a frozen peer (SIGSTOP, connection open) shown down on A after ${freezeMs} ms (goal ≤ 2000 ms; silence limit ${(await view(a)).liveness.downAfterMs} ms)`,
      );
      expect((await peerOn(a, bId))?.connected).toBe(true);
      expect(await (await a.fetch("/cluster")).text()).toMatch(/down \(silent \d+\.\d s\)/);
      expect(metric(await (await a.fetch("/metrics")).text(), "pwdless_cluster_peer_up", bId)).toBe(0);

      // routing acts on the fresh view: B's link is refused on A at once, not after the request's timeout
      const opened = await browse(a, jar, pathOf(link), { method: "POST" });
      expect(opened.status).toBe(503);
      const refusal = a.events().find((e) => e.msg === "could not reach the node that issued a sign-in link");
      expect(String(refusal?.reason)).toContain("not answering");
    } finally {
      b.proc.kill("SIGCONT");
    }
    const thawedAt = performance.now();
    const backMs = await shownOn(a, bId, "B up again on A", thawedAt, (p) => {
      if (!p.connected) disconnected = true;
      return p.up === true;
    });
    console.info(`liveness: the thawed peer shown up again on A after ${backMs} ms`);
    // down was a view: the connection (and anything running on it) was never cut
    expect(disconnected).toBe(false);
    const downLines = a.events().filter((e) => e.msg === "cluster: peer down");
    expect(downLines.map((e) => [e.peer, e.reason])).toEqual([
      [cId, "closed"],
      [bId, "silent"],
    ]);
    // B was the one stalled: on waking it does not call A down for the silence it slept through
    await waitFor("B to see A up", async () => (await peerOn(b, await a.nodeId()))?.up === true);
    expect((await view(b)).liveness.down).toBe(1); // C, killed while B slept, and only C
    expect((await status(a)).ready).toBe(true);
  }, 180_000);
});
