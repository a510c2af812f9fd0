import { startNode, testSecret, uniqueName, type NodeOptions, type NodeProcess } from "./node";
import { waitFor } from "./wait";

export interface ClusterStatusJson {
  nodeId: string;
  ready: boolean;
  peers: { id: string; connected: boolean; pingMs: number | null }[];
  meshSize: number;
  lastCatchUpAt: number | null;
  tables: Record<string, number>;
  counters: { rejected: Record<string, number>; catchUps: number; recordsPulled: number };
}

/** Settings every member of one test cluster shares: a unique name and one secret. */
export function clusterEnv(): Record<string, string> {
  return { CLUSTER_NAME: uniqueName("tc"), SECRET_KEY_BASE: testSecret(), CLUSTER_DISCOVERY: "local" };
}

export async function status(node: NodeProcess): Promise<ClusterStatusJson> {
  const res = await node.fetch("/cluster.json");
  if (!res.ok) throw new Error(`/cluster.json answered ${res.status}`);
  return (await res.json()) as ClusterStatusJson;
}

/** Wait until every node is connected to every other one and ready. */
export async function waitForMesh(nodes: NodeProcess[], timeoutMs = 20_000): Promise<void> {
  await waitFor(
    `${nodes.length} nodes to see each other`,
    async () => {
      const all = await Promise.all(nodes.map(status));
      const ids = all.map((s) => s.nodeId);
      return all.every(
        (s) =>
          s.ready && ids.filter((id) => id !== s.nodeId).every((id) => s.peers.some((p) => p.id === id && p.connected)),
      );
    },
    timeoutMs,
    100,
  );
}

export async function startClusterNodes(
  count: number,
  env: Record<string, string>,
  options: NodeOptions = {},
): Promise<NodeProcess[]> {
  const nodes: NodeProcess[] = [];
  for (let i = 0; i < count; i++) nodes.push(await startNode({ ...options, env: { ...env, ...options.env } }));
  return nodes;
}
