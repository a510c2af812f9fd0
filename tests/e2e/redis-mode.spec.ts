import { expect, test } from "@playwright/test";
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

  await page.goto(`${a.url}/login`);
  await page.getByLabel("Email address").fill("roaming-redis@example.com");
  await page.getByRole("button", { name: "Email me a sign-in link" }).click();
  await expect(page.getByRole("heading", { name: "Check your email" })).toBeVisible();

  await page.goto(`${b.url}/dev/mailbox`);
  const mail = page.getByTestId("mail").filter({ hasText: "To roaming-redis@example.com" });
  await expect(mail).toHaveCount(1);
  await mail.getByTestId("mail-link-here").click();
  await expect(page).toHaveURL(new RegExp(`^${b.url}/auth/email/callback`));
  await page.getByRole("button", { name: "Sign in as roaming-redis@example.com" }).click();
  await expect(page).toHaveURL(`${b.url}/account`);
  await expect(page.getByTestId("account-email")).toHaveText("roaming-redis@example.com");
  const id = await page.getByTestId("account-id").textContent();

  await page.goto(`${c.url}/account`);
  await expect(page.getByTestId("account-email")).toHaveText("roaming-redis@example.com");
  await expect(page.getByTestId("account-id")).toHaveText(id!);

  const signedInCookies = await page.context().cookies();
  await page.getByRole("button", { name: "Sign out", exact: true }).click();
  await expect(page.getByText("You are signed out.")).toBeVisible();

  await page.context().addCookies(signedInCookies.filter((cookie) => cookie.name === "pwdless_session"));
  await page.goto(`${a.url}/account`);
  await expect(page).toHaveURL(/\/login\?redirectTo=/);
});
