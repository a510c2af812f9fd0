// A full disk, met for real (a small tmpfs filled up): a sign-in the node cannot store is answered
// 503 "try again", and trying again works: the link and the code it spent were given back.
import { rmSync } from "node:fs";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { clusterEnv, startClusterNodes, waitForMesh } from "../support/cluster";
import { CookieJar } from "../support/cookie-jar";
import { browse, pathOf, requestMail } from "../support/flows";
import { startNode, stopAllNodes, type NodeProcess } from "../support/node";
import { TestSmtpServer } from "../support/smtp";
import { mountSmallDisk, type SmallDisk } from "../support/tmpfs";
import { waitFor } from "../support/wait";

const LIMITS = { RATE_LIMIT_REQUESTS_PER_IP: "1000", RATE_LIMIT_EMAILS_PER_ADDRESS: "100" };

/**
 * Fill the disk, then write through the node until a write is refused: the change log's last
 * page, which may still have room after the disk is full, is then full too.
 */
async function fillUp(disk: SmallDisk, node: NodeProcess): Promise<string> {
  const filler = disk.fill();
  for (let i = 0; i < 400; i++) {
    const res = await node.fetch("/api/auth/email", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: `filler${i}@example.com`, redirectTo: "/account" }),
    });
    if (res.status === 503) return filler;
  }
  throw new Error("the node still stores writes on a full disk");
}

const apiCode = (node: NodeProcess, jar: CookieJar, email: string, code: string) =>
  browse(node, jar, "/api/auth/email/code", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email, code }),
  });

describe("a sign-in the disk has no room for", () => {
  const smtp = new TestSmtpServer();
  const disks: SmallDisk[] = [];
  beforeAll(() => smtp.start());
  afterEach(async () => {
    await stopAllNodes();
    for (const disk of disks.splice(0)) disk.unmount();
  });
  afterAll(() => smtp.stop());

  it("answers 503, and the same link and the same code sign in once the disk has room again", async () => {
    const disk = mountSmallDisk(8);
    disks.push(disk);
    const node = await startNode({ dataDir: path.join(disk.dir, "data"), env: { SMTP_URL: smtp.url, ...LIMITS } });
    const alice = new CookieJar();
    const { link } = await requestMail(node, alice, "alice@example.com", smtp);
    const bob = new CookieJar();
    const { code } = await requestMail(node, bob, "bob@example.com", smtp);

    const filler = await fillUp(disk, node);
    const refused = await browse(node, alice.clone(), pathOf(link), { method: "POST" });
    expect(refused.status).toBe(503);
    const page = await refused.text();
    expect(page, page).toMatch(/try again/i);
    const refusedCode = await apiCode(node, bob.clone(), "bob@example.com", code);
    expect(refusedCode.status).toBe(503);
    expect(node.log).toContain("cannot commit to the tables files");

    rmSync(filler);
    // the person tries again, as the page says: the link was not spent by the failed sign-in
    const signedIn = await waitFor("the link to sign in once the disk has room", async () => {
      const res = await browse(node, alice, pathOf(link), { method: "POST" });
      expect(res.status, await res.clone().text()).not.toBe(410);
      return res.status === 302 ? res : undefined;
    });
    expect(signedIn.headers.get("location")).toBe("/account");
    expect((await browse(node, alice, "/account")).status).toBe(200);
    const withCode = await apiCode(node, bob, "bob@example.com", code);
    expect(withCode.status).toBe(200);
    expect(await withCode.json()).toMatchObject({ token_type: "Bearer" });
    // and each worked once
    expect((await browse(node, new CookieJar(), pathOf(link), { method: "POST" })).status).toBe(410);
    expect((await apiCode(node, bob.clone(), "bob@example.com", code)).status).toBe(400);
  });

  it("gives a link's use back to the node that issued it when the node it was opened on cannot store the sign-in", async () => {
    const disk = mountSmallDisk(8);
    disks.push(disk);
    const env = { ...clusterEnv(), SMTP_URL: smtp.url, ...LIMITS };
    const [issuer] = await startClusterNodes(1, env);
    const full = await startNode({ env, dataDir: path.join(disk.dir, "data") });
    await waitForMesh([issuer!, full]);
    const jar = new CookieJar();
    const { link } = await requestMail(issuer!, jar, "carol@example.com", smtp);

    const filler = await fillUp(disk, full);
    // opened on the full node: it asks the issuer, which spends the link, then cannot store the session
    const refused = await browse(full, jar.clone(), pathOf(link), { method: "POST" });
    expect(refused.status).toBe(503);
    rmSync(filler);
    const signedIn = await waitFor("the link to sign in on the node that had no room", async () => {
      const res = await browse(full, jar, pathOf(link), { method: "POST" });
      expect(res.status, await res.clone().text()).not.toBe(410);
      return res.status === 302 ? res : undefined;
    });
    expect(signedIn.headers.get("location")).toBe("/account");
    expect((await browse(issuer!, new CookieJar(), pathOf(link), { method: "POST" })).status).toBe(410);
  }, 120_000);
});
