/**
 * The worker thread that reads a node's tables files at start (read.ts): it fills a store of its
 * own, declared as the node's, then hands the tables over (their pages and typed arrays move to
 * the main thread; nothing is copied). A refusal comes back as the PersistenceError to throw.
 */
import { parentPort, workerData } from "node:worker_threads";
import { ClusterStore, type TableOptions } from "../store";
import { readTables } from "./read";
import { PersistenceError } from "./types";

interface Job {
  dir: string;
  clusterName: string;
  label: string;
  tables: Record<string, TableOptions<unknown>>;
}

async function run(job: Job): Promise<void> {
  const store = new ClusterStore({ nodeId: "restore-worker" });
  for (const [name, options] of Object.entries(job.tables)) store.table(name, options);
  try {
    const outcome = await readTables(store, job.dir, job.clusterName, { label: job.label }, undefined);
    const { state, transfer } = store.exportTables();
    parentPort!.postMessage({ ok: true, outcome, state }, transfer);
  } catch (error) {
    const refused = error instanceof PersistenceError;
    parentPort!.postMessage({
      ok: false,
      problem: refused ? error.problem : undefined,
      message: error instanceof Error ? error.message : String(error),
    });
  }
}

void run(workerData as Job);
