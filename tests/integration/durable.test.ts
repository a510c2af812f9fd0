// Durable nodes, as an operator meets them: kill every process, start them again on the same
// DATA_DIRs, and nobody is signed out; a file the node must not use is refused, untouched.
import { execFile, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { clusterEnv, startClusterNodes, status, waitForMesh } from "../support/cluster";
import { CookieJar } from "../support/cookie-jar";
import { accessToken, browse, form, pathOf, requestLink, signIn } from "../support/flows";
import { serverCommand, startNode, stopAllNodes, tempDir, ROOT, type NodeProcess } from "../support/node";
import { TestSmtpServer } from "../support/smtp";
import { waitFor } from "../support/wait";

type Me = { id: string; email: string };

const tablesFile = (node: NodeProcess) => path.join(node.dataDir, "tables.snap");
const changeLog = (node: NodeProcess) =>
  path.join(
    node.dataDir,
    readdirSync(node.dataDir)
      .filter((f) => /^tables-\d+\.log$/.test(f))
      .sort()
      .pop()!,
  );
/** sha256 of every tables file of a DATA_DIR: "untouched" means all of them */
const shas = (dir: string) =>
  Object.fromEntries(
    readdirSync(dir)
      .filter((f) => f.startsWith("tables"))
      .sort()
      .map((f) => [
        f,
        createHash("sha256")
          .update(readFileSync(path.join(dir, f)))
          .digest("hex"),
      ]),
  );

async function meWith(node: NodeProcess, jar: CookieJar): Promise<Me | number> {
  const res = await browse(node, jar.clone(), "/auth/refresh", { method: "POST" });
  if (res.status !== 200) return res.status;
  const { access_token } = (await res.json()) as { access_token: string };
  const me = await node.fetch("/api/me", { headers: { Authorization: `Bearer ${access_token}` } });
  return me.status === 200 ? ((await me.json()) as Me) : me.status;
}

/** The same process again: same port, DATA_DIR and settings. */
function restart(node: NodeProcess, waitUntil: "healthy" | "none" = "healthy"): Promise<NodeProcess> {
  return startNode({ env: node.env, port: node.port, dataDir: node.dataDir, waitUntil });
}

describe("three nodes killed at once and started again on their DATA_DIRs", () => {
  const smtp = new TestSmtpServer();
  afterAll(async () => {
    await stopAllNodes();
    await smtp.stop();
  });

  it("keep every session, user id, used link and sign-out", async () => {
    await smtp.start();
    const env = { ...clusterEnv(), SMTP_URL: smtp.url };
    const nodes = await startClusterNodes(3, env);
    await waitForMesh(nodes);
    const [a, b, c] = nodes as [NodeProcess, NodeProcess, NodeProcess];

    const people = [
      { email: "alice@example.com", jar: await signIn(a, "alice@example.com", smtp) },
      { email: "bob@example.com", jar: await signIn(b, "bob@example.com", smtp) },
      { email: "carol@example.com", jar: await signIn(c, "carol@example.com", smtp) },
    ];
    const ids = new Map<string, string>();
    for (const p of people) {
      const me = await meWith(a, p.jar);
      if (typeof me === "number") throw new Error(`${p.email} is not signed in on A: ${me}`);
      ids.set(p.email, me.id);
    }
    // a used link, opened on another node than the one that sent it
    const linkJar = new CookieJar();
    const link = await requestLink(b, linkJar, "dave@example.com", smtp);
    expect((await browse(c, linkJar, pathOf(link), { method: "POST" })).status).toBe(302);
    // a sign-out on C
    const erin = await signIn(a, "erin@example.com", smtp);
    expect((await browse(c, erin.clone(), "/logout", { method: "POST" })).status).toBe(302);
    await waitFor("every node to hold the same tables", async () => {
      const all = await Promise.all(nodes.map(status));
      return all.every(
        (s) => s.tables.users === 5 && s.tables.sessions === 5 && s.tables.revocations === 1 && s.tables.linkUses >= 5,
      );
    });

    await Promise.all(nodes.map((n) => n.stop("SIGKILL")));
    const again = await Promise.all([restart(a), restart(b), restart(c)]);
    await waitForMesh(again);

    for (const node of again) {
      for (const p of people) {
        const me = await meWith(node, p.jar);
        expect(me, `${p.email} on ${node.port}`).toEqual({ id: ids.get(p.email), email: p.email });
      }
      expect(await meWith(node, erin), `signed-out erin on ${node.port}`).toBe(401);
    }
    const reused = await browse(again[0]!, linkJar.clone(), pathOf(link), { method: "POST" });
    expect(reused.status).toBe(410);
    const restoredLines = again
      .flatMap((n) => n.events())
      .filter((e) => e.msg === "cluster: tables restored from the file");
    expect(restoredLines).toHaveLength(3);
    for (const line of restoredLines) expect(line.existed).toBe(true);
  }, 240_000); // six server starts on a shared two-core machine
});

describe("one node alone", () => {
  afterEach(stopAllNodes);

  it("killed right after a sign-in answer and started alone: the session works, and it becomes ready", async () => {
    const node = await startNode();
    // a first start alone: ready once the discovery window found nobody to catch up from
    await waitFor("the lone first-start node to be ready", async () => (await node.fetch("/readyz")).status === 200);
    const jar = new CookieJar();
    const link = await requestLink(node, jar, "solo@example.com");
    const answer = await browse(node, jar, pathOf(link), { method: "POST" });
    expect(answer.status).toBe(302);
    node.proc.kill("SIGKILL"); // the instant after the answer
    await node.waitForExit();

    const back = await restart(node);
    const me = await meWith(back, jar);
    expect(me).toMatchObject({ email: "solo@example.com" });
    expect((await browse(back, jar.clone(), pathOf(link), { method: "POST" })).status).toBe(410);
    await waitFor("the lone restarted node to be ready", async () => (await back.fetch("/readyz")).status === 200);
    expect(back.events().some((e) => e.msg === "cluster: ready alone, no peer to catch up from")).toBe(true);
    expect(back.log).not.toContain("ExperimentalWarning"); // Node's SQLite notice, and only it, is silenced
  });

  it("backs up its tables while running (npm run cluster -- backup), and a restored backup brings the sessions back", async () => {
    const node = await startNode();
    const jar = await signIn(node, "backed-up@example.com");
    const before = await meWith(node, jar);
    const target = path.join(tempDir("pwdless-backup"), "tables-backup.db");
    // asynchronously: a test process blocked for longer than the server's keep-alive timeout (5 s)
    // would then send its next request on a socket the server has closed meanwhile ("other side closed")
    const run = await promisify(execFile)(
      process.execPath,
      ["--import", "tsx", "server/cluster-cli.ts", "backup", target, "--data-dir", node.dataDir],
      { cwd: ROOT, encoding: "utf8", timeout: 60_000 },
    );
    expect(run.stdout).toContain(`to ${target}`);
    expect((await node.fetch("/healthz")).status).toBe(200); // taken online

    // a disk lost: the node's folder is empty but for its key; the backup goes back in place
    await node.stop("SIGKILL");
    for (const f of readdirSync(node.dataDir)) if (f.startsWith("tables")) rmSync(path.join(node.dataDir, f));
    copyFileSync(target, tablesFile(node));
    const back = await restart(node);
    expect(await meWith(back, jar)).toEqual(before);
    rmSync(path.dirname(target), { recursive: true, force: true });
  });

  it("answers 503 to writes its disk refuses, with a log line, and keeps serving reads", async () => {
    const node = await startNode({
      env: { DATA_MAX_MB: "0.1", RATE_LIMIT_REQUESTS_PER_IP: "10000", RATE_LIMIT_EMAILS_PER_ADDRESS: "10000" },
    });
    const jar = await signIn(node, "reader@example.com");
    const token = await accessToken(node, jar);
    let refused: Response | undefined;
    for (let i = 0; i < 400 && !refused; i++) {
      const res = await node.fetch("/api/auth/email", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ email: `filler${i}@example.com`, redirectTo: "/account" }),
      });
      if (res.status === 503) refused = res;
      else expect(res.status).toBe(202);
    }
    expect(refused, "the file filled up within 400 link requests").toBeDefined();
    expect(await refused!.json()).toMatchObject({ error: "unavailable" });
    // a person gets a page, not JSON and not a stack
    const page = await node.fetch("/login", { ...form({ email: "page@example.com" }), redirect: "manual" });
    expect(page.status).toBe(503);
    expect(await page.text()).toContain("cannot save changes");
    // reads go on
    const me = await node.fetch("/api/me", { headers: { Authorization: `Bearer ${token}` } });
    expect(me.status).toBe(200);
    expect((await browse(node, jar.clone(), "/account")).status).toBe(200);
    expect((await node.fetch("/healthz")).status).toBe(200);
    const lines = node.events().filter((e) => e.event === "unavailable");
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(node.log).not.toMatch(/at .*\.ts:\d+/); // no stack traces
  });
});

describe("tables files the node must not use, after a crash (its change log holding commits)", () => {
  afterEach(stopAllNodes);

  async function refusedStart(node: NodeProcess, env: Record<string, string> = {}) {
    const before = shas(node.dataDir);
    const proc = await startNode({
      env: { ...node.env, ...env },
      port: node.port,
      dataDir: node.dataDir,
      waitUntil: "none",
    });
    expect(await proc.waitForExit()).toBe(1);
    const lines = proc.output.filter((l) => l.startsWith("tables file:"));
    expect(lines, proc.log).toHaveLength(1);
    expect(shas(node.dataDir)).toEqual(before);
    return lines[0]!;
  }

  /** A node that signed someone in and was killed at once: its log holds the commit, nothing was closed. */
  async function killedNodeWithData(): Promise<NodeProcess> {
    const node = await startNode();
    await signIn(node, "someone@example.com");
    await node.stop("SIGKILL");
    expect(readFileSync(changeLog(node)).includes(Buffer.from("someone@example.com"))).toBe(true);
    return node;
  }

  it("refuses a corrupt file, saying how to recover", async () => {
    const node = await killedNodeWithData();
    const bytes = readFileSync(tablesFile(node));
    bytes.fill(0x5a, 0, 100); // the header is gone
    writeFileSync(tablesFile(node), bytes);
    const line = await refusedStart(node);
    expect(line).toContain(tablesFile(node));
    expect(line).toMatch(/damaged.*restore a backup/);
  });

  it("refuses a file of another cluster, and one of a newer format", async () => {
    const node = await killedNodeWithData();
    expect(await refusedStart(node, { CLUSTER_NAME: "some-other-cluster" })).toContain(
      `CLUSTER_NAME=${node.env.CLUSTER_NAME}`,
    );
    const bytes = readFileSync(tablesFile(node));
    bytes.writeUInt32LE(7, 8); // the format number, read before anything else
    writeFileSync(tablesFile(node), bytes);
    expect(await refusedStart(node)).toMatch(/format 7, newer than this version reads/);
  });

  it("refuses to start when its change log was deleted, which would lose what it acknowledged", async () => {
    const node = await killedNodeWithData();
    const log = changeLog(node);
    rmSync(log);
    const line = await refusedStart(node);
    expect(line).toContain(log);
    expect(line).toMatch(/is missing .*acknowledged.*restore a backup/);
  });

  it("refuses flipped bytes inside a stored value, which SQLite's own check would not see", async () => {
    const node = await killedNodeWithData();
    const log = changeLog(node);
    const bytes = readFileSync(log);
    const at = bytes.indexOf(Buffer.from("someone@example.com"));
    for (let i = 0; i < 64 && at + i < bytes.length; i++) bytes[at + i]! ^= 0x01;
    writeFileSync(log, bytes);
    const line = await refusedStart(node);
    expect(line).toContain(log);
    expect(line).toMatch(/damaged \(the block at byte \d+ fails its checksum\)/);
  });

  it("refuses a file it may not read, and says that, not that it is damaged", async () => {
    const node = await killedNodeWithData();
    chmodSync(tablesFile(node), 0o000);
    // root reads anything: as root, the node runs without the capabilities that bypass file
    // permissions (so the checkout, wherever CI cloned it, stays readable to it as its owner)
    const line = process.getuid?.() === 0 ? await refusedStartWithoutDacOverride(node) : await refusedStart(node);
    expect(line).toMatch(/cannot read and write .*tables\.snap \(EACCES\)/);
  });

  async function refusedStartWithoutDacOverride(node: NodeProcess) {
    const before = shas(node.dataDir);
    const { command, args } = serverCommand();
    const drop = "-dac_override,-dac_read_search";
    const run = spawnSync("setpriv", [`--inh-caps=${drop}`, `--bounding-set=${drop}`, "--", command, ...args], {
      cwd: ROOT,
      env: node.env as NodeJS.ProcessEnv,
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(run.status, run.stderr).toBe(1);
    const lines = run.stderr.split("\n").filter((l) => l.startsWith("tables file:"));
    expect(lines, run.stderr).toHaveLength(1);
    expect(shas(node.dataDir)).toEqual(before);
    return lines[0]!;
  }
});
