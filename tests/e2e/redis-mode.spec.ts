import { expect, test } from "@playwright/test";
import { linkAcrossNodes } from "../support/journeys";
import { startNode, stopAllNodes, type NodeProcess } from "../support/node";
import { redisClusterEnv, startRedisServer, stopRedisServers, waitForRedisCluster } from "../support/redis";

// the cross-node sign-in of cluster.spec.ts, with nodes that meet only in Redis (no libp2p)
let a: NodeProcess, b: NodeProcess, c: NodeProcess;

test.beforeAll(async () => {
  const redis = await startRedisServer();
  const env = redisClusterEnv(redis);
  // one at a time, as cluster.spec.ts does: three cold starts at once can outlast the start deadline
  a = await startNode({ env });
  b = await startNode({ env });
  c = await startNode({ env });
  await waitForRedisCluster([a, b, c]);
});
test.afterAll(async () => {
  await stopAllNodes();
  await stopRedisServers();
});

test("Redis mode: a link requested on A, opened on B, signs in on C too; signing out on C signs out A", async ({
  page,
}) => {
  await page.goto(`${a.url}/cluster`);
  await expect(page.getByTestId("cluster-mode")).toContainText("Redis: connected");

  await linkAcrossNodes(page, [a, b, c], "roaming-redis@example.com");
});
