import { test } from "@playwright/test";
import { linkAcrossNodes } from "../support/journeys";
import { clusterEnv, startClusterNodes, waitForMesh } from "../support/cluster";
import { stopAllNodes, type NodeProcess } from "../support/node";

let a: NodeProcess, b: NodeProcess, c: NodeProcess;

test.beforeAll(async () => {
  [a, b, c] = await startClusterNodes(3, clusterEnv());
  await waitForMesh([a, b, c]);
});
test.afterAll(stopAllNodes);

test("a link requested on A, opened from the mailbox on B, signs in on C too; signing out on C signs out A", async ({
  page,
}) => {
  await linkAcrossNodes(page, [a, b, c], "roaming@example.com");
});
