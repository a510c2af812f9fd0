/** The persistence seam: what a node asks of the engine that keeps its tables across restarts. */
import type { ClusterStore } from "../store";
import type { Logger } from "../types";

export interface RestoreResult {
  /** the file held tables from an earlier run (false on a first start) */
  existed: boolean;
  /** records read back and applied */
  restored: number;
  /** records the store refused (e.g. stamped too far in the future after a clock change) */
  refused: number;
  ms: number;
  /** CPU time the process spent meanwhile (user + system): on a busy machine, the cost without the waiting */
  cpuMs: number;
  /** the longest the event loop was held meanwhile (reading is done in slices), when measured */
  stallMs?: number;
  /** when this node last ran in step with its cluster (`noteContact`), ms; null when never noted */
  lastContactAt: number | null;
}

export interface PersistenceContext {
  store: ClusterStore;
  log: Logger;
  /** tombstones older than this are dropped from memory; the file drops them too */
  tombstoneTtlMs: number;
}

/**
 * Keeps one node's rows. `start` reads every row back into the store (origin "restore") before
 * the node talks to anyone, then records every record the store applies.
 */
export interface Persistence {
  start(context: PersistenceContext): Promise<RestoreResult>;
  /** resolves when every record applied so far is committed; rejects with ClusterUnavailableError("disk") */
  durable(): Promise<void>;
  /** commits what is pending and closes the file */
  stop(): Promise<void>;
  /** a small value kept with the rows (e.g. when this node last heard from its cluster) */
  readMeta?(key: string): string | undefined;
  /** set (or, with undefined, remove) a kept value: written with the next commit (await `durable()`) */
  writeMeta?(key: string, value: string | undefined): void;
  /**
   * Keep "this node was in step with its cluster at `at` (ms)" across restarts (one value, e.g. a
   * meta key): `start` refuses files whose last contact is older than the tombstone horizon.
   */
  noteContact(at: number): void;
}

export type PersistenceProblem =
  | "corrupt"
  | "newer-format"
  | "other-cluster"
  | "foreign"
  | "unreadable"
  /** a change log the snapshot (or the log before it) names is gone: acknowledged changes with it */
  | "missing-log"
  /** last in step with its cluster longer ago than the tombstone horizon (see staleFileProblem) */
  | "stale";

/**
 * The tombstone horizon's rule (Cassandra's gc_grace_seconds): a deletion is kept as a tombstone
 * for `tombstoneTtlMs`, then forgotten. A file last in step with its cluster longer ago than that
 * may hold rows deleted meanwhile whose tombstones are gone, which it would bring back: refused.
 */
export function staleFileProblem(
  where: string,
  lastContactAt: number | null,
  now: number,
  tombstoneTtlMs: number,
): PersistenceError | undefined {
  if (lastContactAt === null || now - lastContactAt <= tombstoneTtlMs) return undefined;
  const away = Math.round((now - lastContactAt) / 1000);
  return new PersistenceError(
    "stale",
    `${where} was last in step with its cluster ${away} s ago (${new Date(lastContactAt).toISOString()}), longer than the tombstone horizon (TOMBSTONE_HORIZON_SECONDS=${Math.round(tombstoneTtlMs / 1000)}): it may bring back erased rows. Move the tables files away (tables.snap, tables-*.log; tables.db before format 2) to catch up from the peers, or, if the whole cluster was stopped that long, accept them with \`npm run cluster -- accept-file --data-dir DIR\``,
  );
}

/** The node cannot use its file; `message` is one line saying what and how to recover. */
export class PersistenceError extends Error {
  constructor(
    readonly problem: PersistenceProblem,
    message: string,
  ) {
    super(message);
    this.name = "PersistenceError";
  }
}
