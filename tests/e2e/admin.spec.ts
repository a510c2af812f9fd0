// The /admin pages in Chromium, as an operator uses them: search, a user's page, and its acts, each
// destructive one confirmed first; the person's own browser feels each act.
import { expect, test } from "@playwright/test";
import { signInWithLink } from "../support/journeys";
import { startNode, stopAllNodes, type NodeProcess } from "../support/node";

let node: NodeProcess;

test.beforeAll(async () => {
  node = await startNode({ env: { ADMIN_EMAILS: "boss@example.com" } });
});
test.afterAll(stopAllNodes);

test("an operator finds a user, disables and enables them, and erases them, confirming each destructive act", async ({
  page,
  browser,
}) => {
  // the person, in their own browser
  const theirs = await (await browser.newContext()).newPage();
  await signInWithLink(theirs, node, "worker@example.com");
  expect((await theirs.goto(`${node.url}/admin`))?.status()).toBe(403);

  await signInWithLink(page, node, "boss@example.com");
  await page.goto(`${node.url}/admin`);
  await page.getByLabel("Address starts with, or user id").fill("work");
  await page.getByRole("button", { name: "Search" }).click();
  await expect(page.getByTestId("admin-user-row")).toHaveCount(1);
  await page.getByRole("link", { name: "worker@example.com" }).click();
  await expect(page.getByRole("heading", { name: "worker@example.com" })).toBeVisible();
  await expect(page.getByTestId("admin-status")).toHaveText("active");

  // disable: asked first; Cancel changes nothing
  await page.getByRole("button", { name: "Disable…" }).click();
  const dialog = page.getByRole("alertdialog", { name: "Confirm" });
  await expect(dialog).toContainText("every session ends on every node");
  await dialog.getByRole("link", { name: "Cancel" }).click();
  await expect(dialog).toHaveCount(0);
  await expect(page.getByTestId("admin-status")).toHaveText("active");
  await theirs.goto(`${node.url}/account`);
  await expect(theirs.getByTestId("account-email")).toHaveText("worker@example.com");

  await page.getByRole("button", { name: "Disable…" }).click();
  await dialog.getByRole("button", { name: "Disable" }).click();
  await expect(page.getByTestId("admin-status")).toContainText("disabled since");
  await theirs.goto(`${node.url}/account`);
  await expect(theirs).toHaveURL(/\/login\?redirectTo=/);

  await page.getByRole("button", { name: "Enable" }).click();
  await expect(page.getByTestId("admin-status")).toHaveText("active");
  await signInWithLink(theirs, node, "worker@example.com");

  // erase: asked first, then gone from the search and from their browser
  await page.getByRole("button", { name: "Erase…" }).click();
  await expect(dialog).toContainText("cannot be undone");
  await dialog.getByRole("button", { name: "Erase" }).click();
  await expect(page).toHaveURL(/\/admin\?erased=1$/);
  await page.getByLabel("Address starts with, or user id").fill("worker@");
  await page.getByRole("button", { name: "Search" }).click();
  await expect(page.getByText("No users match.")).toBeVisible();
  await theirs.goto(`${node.url}/account`);
  await expect(theirs).toHaveURL(/\/login\?redirectTo=/);
});
