// A DATA_DIR from the release before decision 015 (one SQLite tables.db): the server migrates it
// on its first start, and everyone stays signed in.
import { cpSync, existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ClusterStore, FilePersistence, writeTablesFile, type RecordEnvelope } from "#cluster";
import { CookieJar } from "../support/cookie-jar";
import { browse, signIn } from "../support/flows";
import { ROOT, startNode, stopAllNodes, tempDir, type NodeProcess } from "../support/node";

const restart = (node: NodeProcess) => startNode({ env: node.env, port: node.port, dataDir: node.dataDir });

async function refreshed(node: NodeProcess, jar: CookieJar): Promise<number> {
  return (await browse(node, jar.clone(), "/auth/refresh", { method: "POST" })).status;
}

describe("a DATA_DIR of the release before", () => {
  afterEach(stopAllNodes);

  it("made by that release, killed with its WAL: the server migrates it, row for row", async () => {
    const fixture = path.join(ROOT, "tests/fixtures/tables-format-1");
    const expected = JSON.parse(readFileSync(path.join(fixture, "expected.json"), "utf8")) as {
      records: RecordEnvelope[];
    };
    const dataDir = tempDir("pwdless-format-1");
    for (const name of ["tables.db", "tables.db-wal", "tables.db-shm"])
      cpSync(path.join(fixture, name), path.join(dataDir, name));
    const node = await startNode({ dataDir, env: { CLUSTER_NAME: "fixture-format-1" } });
    expect(node.events().some((e) => String(e.msg).includes("migrated to format 2"))).toBe(true);
    const users = (await (await node.fetch("/cluster/tables/users.json")).json()) as {
      rows: { id: string; email: string }[];
    };
    const wanted = expected.records.filter((r) => r.table === "users" && r.value !== null);
    expect(users.rows.map((u) => u.id).sort()).toEqual(wanted.map((r) => r.key).sort());
    expect(existsSync(path.join(dataDir, "tables.db"))).toBe(false);
    expect(readdirSync(path.join(dataDir, "format-1-before-migration")).sort()).toEqual([
      "tables.db",
      "tables.db-shm",
      "tables.db-wal",
    ]);
    // and it starts again from what it wrote
    await node.stop();
    const again = await restart(node);
    expect(again.events().some((e) => String(e.msg).includes("migrated"))).toBe(false);
    const after = (await (await again.fetch("/cluster/tables/users.json")).json()) as { rows: { id: string }[] };
    expect(after.rows.length).toBe(wanted.length);
  });

  it("written as that release wrote it: everyone signed in stays signed in", async () => {
    const node = await startNode();
    const alice = await signIn(node, "alice@example.com");
    const bob = await signIn(node, "bob@example.com");
    await node.stop();
    // the same rows, written by the previous release's writer (kept for this) as its tables.db
    const store = new ClusterStore({ nodeId: "reader" });
    const persistence = new FilePersistence({ dir: node.dataDir, clusterName: node.env.CLUSTER_NAME! });
    await persistence.start({ store, log: { info() {}, warn() {}, error() {} }, tombstoneTtlMs: 7 * 86_400_000 });
    await persistence.stop();
    const records = [...store.records()];
    for (const f of readdirSync(node.dataDir)) if (f.startsWith("tables")) rmSync(path.join(node.dataDir, f));
    writeTablesFile(path.join(node.dataDir, "tables.db"), node.env.CLUSTER_NAME!, [records]);

    const back = await restart(node);
    expect(back.events().some((e) => String(e.msg).includes("migrated to format 2"))).toBe(true);
    expect(await refreshed(back, alice)).toBe(200);
    expect(await refreshed(back, bob)).toBe(200);
    expect(await refreshed(back, new CookieJar())).toBe(401);
  });
});
