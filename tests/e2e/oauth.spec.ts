import { expect, test } from "@playwright/test";
import { startNode, stopAllNodes, tempDir, testSecret, uniqueName, type NodeProcess } from "../support/node";
import { waitFor } from "../support/wait";

let a: NodeProcess, b: NodeProcess;

test.beforeAll(async () => {
  // two local-mode nodes of one cluster: each serves its own development provider
  const env = {
    CLUSTER_DISCOVERY: "local",
    CLUSTER_REGISTRY_DIR: tempDir("pwdless-registry"),
    CLUSTER_NAME: uniqueName("oauth-e2e"),
    CLUSTER_SECRET: testSecret(),
    SECRET_KEY_BASE: testSecret(),
  };
  a = await startNode({ env });
  b = await startNode({ env });
  await waitFor(
    "node B to be ready (caught up with A)",
    async () => (await b.fetch("/readyz")).status === 200,
    30_000,
    100,
  );
});
test.afterAll(stopAllNodes);

test("a person signs in with Dev OIDC on node A and finds the same account on node B", async ({ page }) => {
  await page.goto(`${a.url}/login`);
  await page.getByRole("button", { name: "Sign in with Dev OIDC" }).click();

  // the development provider's own page, on A
  await expect(page).toHaveURL(new RegExp(`^${a.url}/dev/oidc/interaction/`));
  await expect(page.getByRole("heading", { name: "Dev OIDC" })).toBeVisible();
  await page.getByLabel("Email address").fill("Lin@Example.com");
  await page.getByRole("button", { name: "Continue" }).click();

  await expect(page).toHaveURL(`${a.url}/account`);
  await expect(page.getByTestId("account-email")).toHaveText("lin@example.com");
  const id = await page.getByTestId("account-id").textContent();
  expect(id).toMatch(/^[0-9a-f-]{36}$/);
  await expect(page.getByTestId("account-methods")).toContainText("Dev OIDC");

  // cookies are per host, not per port: the same browser, on B, is the same person
  await page.goto(`${b.url}/account`);
  await expect(page.getByTestId("account-email")).toHaveText("lin@example.com");
  await expect(page.getByTestId("account-id")).toHaveText(id!);
  await expect(page.getByTestId("account-methods")).toContainText("Dev OIDC");
});

test("cancelling at the provider shows why, and Try again goes back to the provider", async ({ page }) => {
  await page.goto(`${a.url}/login`);
  await page.getByRole("button", { name: "Sign in with Dev OIDC" }).click();
  await page.getByRole("button", { name: "Cancel" }).click();

  await expect(page.getByRole("heading", { name: "Sign-in was cancelled" })).toBeVisible();
  await page.getByRole("button", { name: "Try again" }).click();
  await expect(page).toHaveURL(new RegExp(`^${a.url}/dev/oidc/interaction/`));
});
