/**
 * Persistence in a tables file in DATA_DIR: reads the file back at start, then commits what the
 * store applies in one transaction per event-loop turn, and keeps the file from growing.
 */
import { ClusterUnavailableError } from "../errors";
import type { RecordEnvelope } from "../store";
import { LAST_CONTACT_KEY, TablesFile } from "./sqlite";
import { staleFileProblem, type Persistence, type PersistenceContext, type RestoreResult } from "./types";

export interface FilePersistenceOptions {
  /** e.g. `DATA_DIR/tables.db` */
  file: string;
  /** written into a new file; an existing file must carry the same */
  clusterName: string;
  /** refuse writes past this file size (bytes); default: none */
  maxBytes?: number;
  /** records per slice while loading; the loop yields between slices. Default 50 000 */
  sliceRecords?: number;
  /** how often tombstones are deleted, the WAL truncated and free pages returned. Default 10 min */
  maintenanceMs?: number;
  /** after a failed commit, the next attempt comes at the latest this much later. Default 1 s */
  retryMs?: number;
  now?: () => number;
}

interface Waiter {
  resolve(): void;
  reject(error: Error): void;
}

const DELETE_CHUNK = 5_000;
/** vacuum once this many pages (and a tenth of the file) are free */
const VACUUM_MIN_FREE_PAGES = 256;

export interface MaintenanceResult {
  tombstonesDeleted: number;
  pagesFreed: number;
}

export class FilePersistence implements Persistence {
  private file: TablesFile | undefined;
  private context: PersistenceContext | undefined;
  /** `table \0 key` → the newest applied version not yet committed */
  private pending = new Map<string, RecordEnvelope>();
  private waiters: Waiter[] = [];
  private scheduled: NodeJS.Immediate | undefined;
  private retry: NodeJS.Timeout | undefined;
  private maintenance: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private failing: string | undefined;
  private failures = 0;
  private readonly now: () => number;
  readonly counters = { commits: 0, recordsCommitted: 0, commitFailures: 0, tombstonesDeleted: 0 };

  constructor(private readonly options: FilePersistenceOptions) {
    this.now = options.now ?? Date.now;
  }

  async start(context: PersistenceContext): Promise<RestoreResult> {
    const started = this.now();
    const cpu = process.cpuUsage();
    this.context = context;
    const file = TablesFile.open(this.options.file, {
      clusterName: this.options.clusterName,
      maxBytes: this.options.maxBytes,
      label: "DATA_DIR tables",
    });
    const noted = Number(file.meta(LAST_CONTACT_KEY));
    const lastContactAt = Number.isFinite(noted) && noted > 0 ? noted : null;
    // before a single row is read: rows erased while this node was away must not come back
    const stale = file.existed
      ? staleFileProblem(`DATA_DIR tables file ${this.options.file}`, lastContactAt, this.now(), context.tombstoneTtlMs)
      : undefined;
    if (stale) {
      file.close();
      throw stale;
    }
    this.file = file;
    let restored = 0;
    let refused = 0;
    try {
      // nothing else writes yet (no peers, no app): loading in slices keeps signals and timers alive
      for (const slice of file.slices(this.options.sliceRecords ?? 50_000)) {
        for (const record of slice) {
          if (context.store.applyRemote(record, "restore") === "rejected") refused += 1;
          else restored += 1;
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
    } catch (error) {
      file.close();
      this.file = undefined;
      throw error;
    }
    this.unsubscribe = context.store.onApplied((record, origin) => {
      if (origin !== "restore") this.add(record);
    });
    const every = this.options.maintenanceMs ?? 10 * 60_000;
    this.maintenance = setInterval(() => this.maintainQuietly(), every);
    this.maintenance.unref();
    const ms = this.now() - started;
    if (refused > 0) {
      context.log.warn("cluster: some rows of the tables file were refused by the store", { refused });
    }
    const used = process.cpuUsage(cpu);
    return {
      existed: file.existed,
      restored,
      refused,
      ms,
      cpuMs: Math.round((used.user + used.system) / 1000),
      lastContactAt,
    };
  }

  noteContact(at: number): void {
    try {
      this.file?.setMeta(LAST_CONTACT_KEY, String(at));
    } catch (error) {
      // the next note tries again; a full disk is reported by the commits themselves
      this.context?.log.warn("cluster: cannot note the last contact in the tables file", {
        error: (error as Error).message,
      });
    }
  }

  durable(): Promise<void> {
    if (this.pending.size === 0) return Promise.resolve();
    if (!this.file) {
      return Promise.reject(new ClusterUnavailableError("disk", "the tables file is closed: the node is stopping"));
    }
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.schedule();
    });
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    if (this.maintenance) clearInterval(this.maintenance);
    if (this.retry) clearTimeout(this.retry);
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    this.flush();
    try {
      this.file?.checkpoint();
    } catch {
      // the data is committed in the WAL either way; the next start folds it in
    }
    this.file?.close();
    this.file = undefined;
  }

  /** Delete old tombstones from the file, truncate the WAL, give free pages back. */
  maintain(): MaintenanceResult {
    const file = this.file;
    if (!file || !this.context) return { tombstonesDeleted: 0, pagesFreed: 0 };
    this.flush();
    const horizon = this.now() - this.context.tombstoneTtlMs;
    let deleted = 0;
    // bounded (100k rows, 10k pages a run): a huge backlog is finished by the next runs, not in one long stall
    for (let round = 0; round < 20; round++) {
      const n = file.deleteTombstones(horizon, DELETE_CHUNK);
      deleted += n;
      if (n < DELETE_CHUNK) break;
    }
    const before = file.pages();
    if (before.free >= VACUUM_MIN_FREE_PAGES && before.free * 10 >= before.total)
      file.vacuumStep(Math.min(before.free, 10_000));
    file.checkpoint();
    const after = file.pages();
    this.counters.tombstonesDeleted += deleted;
    return { tombstonesDeleted: deleted, pagesFreed: Math.max(0, before.total - after.total) };
  }

  /** A consistent copy of the file while the node runs. */
  backupTo(target: string): void {
    if (!this.file) throw new Error("the tables file is not open");
    this.flush();
    this.file.backupTo(target);
  }

  private add(record: RecordEnvelope): void {
    // only the newest version of a key matters: the store told us it won
    this.pending.set(`${record.table}\0${record.key}`, record);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || !this.file) return;
    // one transaction per event-loop turn: everything applied in this turn shares one commit
    this.scheduled = setImmediate(() => {
      this.scheduled = undefined;
      this.flush();
    });
  }

  private flush(): void {
    const file = this.file;
    if (!file || this.pending.size === 0) {
      this.settle(undefined);
      return;
    }
    const batch = this.pending;
    const waiters = this.waiters;
    this.pending = new Map();
    this.waiters = [];
    try {
      file.write(batch.values());
    } catch (error) {
      // keep the batch (newer versions written meanwhile win) and try again later
      for (const [k, r] of batch) if (!this.pending.has(k)) this.pending.set(k, r);
      this.failed(error as Error, waiters);
      return;
    }
    this.counters.commits += 1;
    this.counters.recordsCommitted += batch.size;
    if (this.failing) {
      this.context?.log.info("cluster: the tables file takes writes again", { failedCommits: this.failures });
      this.failing = undefined;
      this.failures = 0;
    }
    for (const w of waiters) w.resolve();
  }

  private settle(error: Error | undefined): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) error ? w.reject(error) : w.resolve();
  }

  private failed(error: Error, waiters: Waiter[]): void {
    this.counters.commitFailures += 1;
    this.failures += 1;
    const reason = error.message;
    if (this.failing === undefined) {
      this.context?.log.error("cluster: cannot commit to the tables file; writes fail until it can", {
        file: this.options.file,
        error: reason,
        pending: this.pending.size,
      });
    }
    this.failing = reason;
    const unavailable = new ClusterUnavailableError("disk", `this node cannot save changes to its disk (${reason})`);
    for (const w of waiters) w.reject(unavailable);
    if (!this.retry) {
      this.retry = setTimeout(() => {
        this.retry = undefined;
        this.schedule();
      }, this.options.retryMs ?? 1_000);
      this.retry.unref();
    }
  }

  private maintainQuietly(): void {
    try {
      const result = this.maintain();
      if (result.tombstonesDeleted > 0 || result.pagesFreed > 0) {
        this.context?.log.info("cluster: tables file maintained", { ...result });
      }
    } catch (error) {
      this.context?.log.warn("cluster: tables file maintenance failed", { error: (error as Error).message });
    }
  }
}

/** The SQLite persistence a gossip node starts (Redis mode skips it: Redis is its durable store). */
export function filePersistence(options: FilePersistenceOptions): FilePersistence {
  return new FilePersistence(options);
}
