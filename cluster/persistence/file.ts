/**
 * Persistence in DATA_DIR (format 2, decision 015): a snapshot of every table (`tables.snap`) and
 * a change log (`tables-NNNNNN.log`) of what changed since, both in the store's own binary
 * records, in checksummed blocks. At start the node reads them back (read-only: a file it refuses
 * is left untouched); then what the store applies is appended to the log, one commit (one write,
 * one fdatasync, off the event loop) for everything applied while the previous one was on its way.
 * When the log has grown past the snapshot, a new snapshot is written from memory in slices and
 * the old files are dropped.
 */
import { open, readFile, rename, rm, stat, type FileHandle } from "node:fs/promises";
import path from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { ByteWriter } from "../codec";
import { ClusterUnavailableError } from "../errors";
import type { StoreExport } from "../store";

import { BLOCK_HEADER_BYTES, BlockType, FileKind, headerBlock, preamble, sealBlock, type HeaderMeta } from "./blocks";
import { LAST_CONTACT_KEY } from "./sqlite";
import {
  ACCEPTED_FILE,
  checkAccess,
  describe,
  FORMAT_1_FILE,
  listTablesFiles,
  logFileName,
  logHasCommits,
  SNAPSHOT_FILE,
  SNAPSHOT_TMP,
  type ChainEnd,
  type Where,
} from "./chain";
import { beginRows, endRows, newMark, writeDictionary, writeMeta, type DictionaryMark } from "./entries";
import { moveFormat1Aside, readFormat1 } from "./migrate";
import { readTables, type ReadOutcome } from "./read";
import {
  PersistenceError,
  staleFileProblem,
  type Persistence,
  type PersistenceContext,
  type PersistenceProblem,
  type RestoreResult,
} from "./types";

export interface FilePersistenceOptions {
  /** DATA_DIR: the folder of the tables files */
  dir: string;
  /** written into new files; existing files must carry the same */
  clusterName: string;
  /** refuse writes that would take the tables files past this many bytes; default: none */
  maxBytes?: number;
  /** how often a snapshot is considered (the log has grown); default 10 min */
  maintenanceMs?: number;
  /** after a failed commit, the next attempt comes at the latest this much later. Default 1 s */
  retryMs?: number;
  /** a new snapshot is written once the logs hold more than this and more than the snapshot. Default 64 MiB */
  snapshotAfterBytes?: number;
  /** how long one slice of reading or writing may hold the event loop. Default 10 ms */
  sliceMs?: number;
  /** who the files are, in refusal lines. Default "DATA_DIR" */
  label?: string;
  now?: () => number;
}

interface Waiter {
  /** the journal position and meta epoch it waits to see committed */
  position: number;
  meta: number;
  resolve(): void;
  reject(error: Error): void;
}

export interface MaintenanceResult {
  /** bytes of the tables files before and after a new snapshot */
  bytesBefore: number;
  bytesAfter: number;
}

type WorkerAnswer =
  | { ok: true; outcome: ReadOutcome; state: StoreExport }
  | { ok: false; problem: PersistenceProblem | undefined; message: string };

/**
 * The worker's script: beside this module's bundle in the build (build/node/restore-worker.js,
 * see server/build-server.ts), or the TypeScript source run through tsx.
 */
function restoreWorkerFile(): { file: string; execArgv: string[] | undefined } {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith(".ts")) {
    // tsx's loader, found from here (its package's "." is the loader `node --import tsx` uses)
    const tsx = path.join(path.dirname(createRequire(import.meta.url).resolve("tsx/package.json")), "dist/loader.mjs");
    return {
      file: path.join(path.dirname(here), "restore-worker.ts"),
      execArgv: ["--import", pathToFileURL(tsx).href],
    };
  }
  return { file: path.join(path.dirname(here), "restore-worker.js"), execArgv: undefined };
}

/** a commit's block is split past this, so no block is huge */
const BLOCK_SPLIT = 4 << 20;
/** rows a commit takes at most (what is left goes in the next): building it stays a few ms */
const COMMIT_BYTES = 2 << 20;
/** no snapshot is begun within this long of a commit that left rows behind */
const BUSY_MS = 3_000;
/** rows per snapshot block */
const SNAPSHOT_BLOCK = 1 << 20;

export class FilePersistence implements Persistence {
  private context: PersistenceContext | undefined;
  private readonly where: Where;
  private readonly dir: string;
  private readonly now: () => number;
  private log: { handle: FileHandle; generation: number; size: number } | undefined;
  private snapshotBytes = 0;
  /** bytes of the logs before the current one (until the snapshot after them drops them) */
  private olderLogBytes = 0;
  private readonly meta = new Map<string, string>();
  /** when this node was last in step with its cluster (meta LAST_CONTACT_KEY), as read at start */
  private lastContactAt: number | null = null;
  /** the store's `forgotten` when the last snapshot began: more since, and a snapshot is due */
  private forgottenAtSnapshot = 0;
  /** an operator's \`accept-file\` note read at start: kept in the files, then removed */
  private acceptedAt: number | undefined;
  private readonly metaChanged = new Map<string, string | undefined>();
  private logMark: DictionaryMark = newMark();
  private readonly commit = new ByteWriter(1 << 20);
  private waiting: Waiter[] = [];
  /** what is durable: the journal up to `position`, the meta changes up to epoch `meta` */
  private readonly committed = { position: 0, meta: 0 };
  private metaEpoch = 0;
  private inFlight: Promise<void> | undefined;
  private scheduled: NodeJS.Immediate | undefined;
  private retry: NodeJS.Timeout | undefined;
  private maintenance: NodeJS.Timeout | undefined;
  private rotating = false;
  /** when a commit last left rows behind for the next (rows pouring in) */
  private lastFullCommitAt = -Infinity;
  private snapshotting: Promise<void> | undefined;
  private stopping = false;
  private failing: string | undefined;
  private failures = 0;
  readonly counters = { commits: 0, recordsCommitted: 0, commitFailures: 0, snapshots: 0 };

  constructor(private readonly options: FilePersistenceOptions) {
    this.dir = options.dir;
    this.where = { label: options.label ?? "DATA_DIR" };
    this.now = options.now ?? Date.now;
  }

  async start(context: PersistenceContext): Promise<RestoreResult> {
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    try {
      // the histogram holds whole timer intervals: the stall is what passed beyond the 10 ms tick
      return { ...(await this.open(context)), stallMs: Math.max(0, Math.round(delay.max / 1e6 - 10)) };
    } finally {
      delay.disable();
    }
  }

  private async open(context: PersistenceContext): Promise<RestoreResult> {
    const started = this.now();
    const cpu = process.cpuUsage();
    this.context = context;
    const { store, log } = context;
    try {
      await checkAccess(this.dir, this.where);
    } catch {
      throw new PersistenceError(
        "unreadable",
        `cannot read and write the DATA_DIR folder ${this.dir}: give the server's user read and write access to it, or point DATA_DIR elsewhere`,
      );
    }
    const files = await listTablesFiles(this.dir);
    let existed = false;
    let restored = 0;
    let refused = 0;
    let snapshotNow = false;
    let migrated = false;
    if (files.snapshot) {
      existed = true;
      const outcome = await this.restore(files.logs);
      restored = outcome.restored;
      refused = outcome.refused;
      snapshotNow = outcome.snapshotNow;
      if (files.format1) {
        if (outcome.header.migratedFrom !== "format-1") {
          throw new PersistenceError(
            "foreign",
            `${describe(this.where, path.join(this.dir, "tables.db"))} lies beside ${path.join(this.dir, SNAPSHOT_FILE)}: a node keeps one or the other; move the one you do not mean to use away`,
          );
        }
        // a migration that stopped after writing the new files: finish it
        await moveFormat1Aside(this.dir);
      }
    } else if (files.format1) {
      existed = true;
      migrated = true;
      ({ restored, refused } = await readFormat1(this.dir, this.options.clusterName, store, this.where, (noted) =>
        this.refuseIfStale(path.join(this.dir, FORMAT_1_FILE), noted),
      ));
      if (this.lastContactAt !== null) this.meta.set(LAST_CONTACT_KEY, String(this.lastContactAt));
      snapshotNow = true;
    } else {
      for (const generation of files.logs) {
        const file = path.join(this.dir, logFileName(generation));
        if (await logHasCommits(file)) {
          throw new PersistenceError(
            "corrupt",
            `${describe(this.where, path.join(this.dir, SNAPSHOT_FILE))} is missing but ${file} holds changes: restore the snapshot or a backup, or move the tables files away to start this node empty and let it catch up from its peers`,
          );
        }
      }
      snapshotNow = true;
    }
    if (!this.log) {
      // no log to go on in: a first start, a migration, a restored backup
      const last = files.logs.length > 0 ? files.logs[files.logs.length - 1]! : 0;
      await this.openNewLog(last + 1);
      await this.writeSnapshot(migrated ? "format-1" : undefined);
    } else if (snapshotNow) {
      // the files' ids differ from the store's: a new log and snapshot in the store's own
      await this.snapshot();
    }
    if (migrated) {
      const aside = await moveFormat1Aside(this.dir);
      log.info("cluster: tables file migrated to format 2; the old files were moved aside and may be deleted", {
        from: path.join(this.dir, "tables.db"),
        to: aside,
        rows: restored,
      });
    }
    await rm(path.join(this.dir, SNAPSHOT_TMP), { force: true });
    if (this.acceptedAt !== undefined) {
      // the operator's note becomes the files' own last contact before it is removed
      if (Number(this.meta.get(LAST_CONTACT_KEY) ?? 0) < this.acceptedAt) {
        this.writeMeta(LAST_CONTACT_KEY, String(this.acceptedAt));
      }
      await this.durable();
      await rm(path.join(this.dir, ACCEPTED_FILE), { force: true });
    }
    store.startJournal();
    const every = this.options.maintenanceMs ?? 10 * 60_000;
    this.maintenance = setInterval(() => this.snapshotIfDue(true), every);
    this.maintenance.unref();
    if (refused > 0) log.warn("cluster: some rows of the tables files were refused by the store", { refused });
    const used = process.cpuUsage(cpu);
    return {
      existed,
      restored,
      refused,
      ms: this.now() - started,
      cpuMs: Math.round((used.user + used.system) / 1000),
      lastContactAt: this.lastContactAt,
    };
  }

  /** Read the snapshot and its logs into the store; open the last log for commits. */
  private async restore(logs: number[]): Promise<{
    restored: number;
    refused: number;
    header: HeaderMeta;
    snapshotNow: boolean;
  }> {
    const { store, log } = this.context!;
    for (const generation of logs) await checkAccess(path.join(this.dir, logFileName(generation)), this.where);
    await checkAccess(path.join(this.dir, SNAPSHOT_FILE), this.where);
    // into an empty store (a start), the files are read on a worker thread: the event loop stays
    // free, and the read runs beside whatever else the start does
    const read = store.isEmpty() ? await this.readOnWorker() : { ...(await this.readHere()), on: "main thread" };
    const { header, kind, end } = read;
    for (const [key, value] of read.meta) this.meta.set(key, value);
    // before a byte of the files is changed, and before a row is served or sent
    await this.refuseIfStale(path.join(this.dir, SNAPSHOT_FILE), this.meta.get(LAST_CONTACT_KEY));
    const snapshotStat = await stat(path.join(this.dir, SNAPSHOT_FILE));
    this.snapshotBytes = snapshotStat.size;
    let snapshotNow = !read.identity || kind === FileKind.Backup;
    // leftovers: logs a finished snapshot made obsolete, or one a rotation cut short began;
    // anything else refuses the start before a byte is changed
    const leftovers: string[] = [];
    for (const generation of logs) {
      if (end?.chain.includes(generation)) continue;
      const file = path.join(this.dir, logFileName(generation));
      const obsolete = end !== undefined && generation < end.chain[0]!;
      if (!obsolete && (await logHasCommits(file))) {
        throw new PersistenceError(
          "corrupt",
          end
            ? `${describe(this.where, file)} is not part of the files ${path.join(this.dir, SNAPSHOT_FILE)} names: move it away (after restoring a backup, remove the old change logs)`
            : `${describe(this.where, file)} lies beside a restored backup: remove the old change logs (tables-*.log) when restoring one`,
        );
      }
      leftovers.push(file);
    }
    if (end) await this.adoptLog(end, logs);
    else snapshotNow = true;
    for (const file of leftovers) await rm(file, { force: true });
    // after ids were mapped, the files speak of other ids than the store: a new snapshot speaks ours
    if (!snapshotNow) this.logMark = { ...read.dictionary };
    log.info("cluster: tables files read", { generation: header.generation, rows: read.rows, on: read.on });
    return { restored: read.rows, refused: read.refused, header, snapshotNow };
  }

  /** Read the files on a worker thread and take over the tables it filled; inline when no worker starts. */
  private async readOnWorker(): Promise<ReadOutcome & { on: string }> {
    const { store, log } = this.context!;
    const { file, execArgv } = restoreWorkerFile();
    let worker: Worker;
    try {
      worker = new Worker(file, {
        execArgv,
        workerData: {
          dir: this.dir,
          clusterName: this.options.clusterName,
          label: this.where.label,
          tables: store.declarations(),
        },
      });
    } catch (error) {
      log.warn("cluster: no worker thread to read the tables files on; reading them here", {
        error: (error as Error).message,
      });
      return { ...(await this.readHere()), on: "main thread" };
    }
    const answer = await new Promise<WorkerAnswer | Error>((resolve) => {
      worker.once("message", (message: WorkerAnswer) => resolve(message));
      worker.once("error", (error) => resolve(error));
      worker.once("exit", (code) => resolve(new Error(`the worker thread exited with ${code}`)));
    });
    void worker.terminate();
    if (answer instanceof Error) {
      log.warn("cluster: the worker thread reading the tables files failed; reading them here", {
        error: answer.message,
      });
      return { ...(await this.readHere()), on: "main thread" };
    }
    if (!answer.ok) {
      if (answer.problem) throw new PersistenceError(answer.problem, answer.message);
      throw new Error(answer.message);
    }
    store.adoptTables(answer.state);
    return { ...answer.outcome, on: "worker thread" };
  }

  private readHere(): Promise<ReadOutcome> {
    return readTables(this.context!.store, this.dir, this.options.clusterName, this.where, this.options.sliceMs ?? 10);
  }

  private async adoptLog(end: ChainEnd, logs: number[]): Promise<void> {
    const handle = await open(end.file, "r+");
    if (end.torn) {
      await handle.truncate(end.goodBytes);
      await handle.datasync();
      this.context!.log.warn(
        "cluster: the change log ended in a write a crash cut short (never acknowledged); that part was dropped",
        { file: end.file, at: end.goodBytes },
      );
    }
    this.log = { handle, generation: end.generation, size: end.goodBytes };
    this.olderLogBytes = 0;
    for (const generation of end.chain) {
      if (generation === end.generation || !logs.includes(generation)) continue;
      this.olderLogBytes += (await stat(path.join(this.dir, logFileName(generation)))).size;
    }
  }

  durable(): Promise<void> {
    if (!this.log && !this.rotating) {
      return Promise.reject(new ClusterUnavailableError("disk", "the tables files are closed: the node is stopping"));
    }
    const position = this.context?.store.journalPosition ?? 0;
    const meta = this.metaEpoch;
    if (this.committed.position >= position && this.committed.meta >= meta) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ position, meta, resolve, reject });
      this.schedule();
    });
  }

  noteContact(at: number): void {
    // committed with the next commit; a node that writes nothing commits it alone
    this.writeMeta(LAST_CONTACT_KEY, String(at));
  }

  /**
   * The tombstone horizon's rule: files last in step with their cluster longer ago than it may
   * hold rows erased meanwhile, whose tombstones are gone: refused, the files untouched. An
   * operator's \`accept-file\` note beside them counts as a contact.
   */
  private async refuseIfStale(where: string, noted: string | undefined): Promise<void> {
    const fromFiles = Number(noted);
    let last = Number.isFinite(fromFiles) && fromFiles > 0 ? fromFiles : null;
    const accepted = Number((await readFile(path.join(this.dir, ACCEPTED_FILE), "utf8").catch(() => "")).trim());
    if (Number.isFinite(accepted) && accepted > 0) {
      this.acceptedAt = accepted;
      last = Math.max(last ?? 0, accepted);
    }
    this.lastContactAt = last;
    const stale = staleFileProblem(
      `${this.where.label} tables file ${where}`,
      last,
      this.now(),
      this.context!.tombstoneTtlMs,
    );
    if (stale) throw stale;
  }

  readMeta(key: string): string | undefined {
    return this.meta.get(key);
  }

  writeMeta(key: string, value: string | undefined): void {
    if (value === undefined) this.meta.delete(key);
    else this.meta.set(key, value);
    this.metaChanged.set(key, value);
    this.metaEpoch += 1;
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.maintenance) clearInterval(this.maintenance);
    if (this.retry) clearTimeout(this.retry);
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    await this.snapshotting?.catch(() => {});
    // what is pending is committed (in as many commits as it takes); after three failures in a
    // row, what could not be written stays unacknowledged
    await this.inFlight?.catch(() => {});
    for (let failures = 0; this.pending() && failures < 3;) {
      const before = this.counters.commitFailures;
      this.flush();
      await this.inFlight?.catch(() => {});
      failures = this.counters.commitFailures > before ? failures + 1 : 0;
    }
    this.context?.store.stopJournal();
    const log = this.log;
    this.log = undefined;
    await log?.handle.close();
    this.settle(
      this.waiting.splice(0),
      new ClusterUnavailableError("disk", "the tables files are closed: the node is stopping"),
    );
  }

  /** Write a new snapshot now (the logs are dropped after it); resolves when it is in place. */
  async maintain(): Promise<MaintenanceResult> {
    const bytesBefore = this.bytes();
    await this.snapshot();
    return { bytesBefore, bytesAfter: this.bytes() };
  }

  /** A consistent copy of the tables files as one file, while the node runs. */
  async backupTo(target: string): Promise<void> {
    const { backupTables } = await import("./backup");
    await this.durable();
    await backupTables(this.dir, target, this.options.clusterName);
  }

  /** Bytes of the tables files. */
  bytes(): number {
    return this.snapshotBytes + this.olderLogBytes + (this.log?.size ?? 0);
  }

  private pending(): boolean {
    return (this.context?.store.journalSize ?? 0) > 0 || this.metaChanged.size > 0;
  }

  private schedule(): void {
    if (this.scheduled || this.stopping) return;
    // one commit for everything applied while the previous was on its way (and this turn)
    this.scheduled = setImmediate(() => {
      this.scheduled = undefined;
      this.flush();
    });
  }

  private flush(): void {
    const store = this.context?.store;
    const log = this.log;
    if (!store || !log || this.inFlight || this.rotating) return;
    if (!this.pending()) {
      this.settleCommitted();
      return;
    }
    const w = this.commit;
    w.pos = 0;
    let blockStart = 0;
    w.ensure(BLOCK_HEADER_BYTES);
    w.pos += BLOCK_HEADER_BYTES;
    const markBefore = { ...this.logMark };
    writeDictionary(w, store.dictionary, this.logMark);
    const meta = new Map(this.metaChanged);
    const metaEpoch = this.metaEpoch;
    writeMeta(w, meta);
    this.metaChanged.clear();
    let table: string | undefined;
    let unchecked = false;
    let rowsAt = -1;
    let rows = 0;
    const { upTo, drained } = store.drainJournal((name, page, start, end, isUnchecked) => {
      if (name !== table || isUnchecked !== unchecked) {
        if (rowsAt >= 0) endRows(w, rowsAt);
        rowsAt = beginRows(w, name, isUnchecked);
        table = name;
        unchecked = isUnchecked;
      }
      w.bytes(page, start, end);
      rows += 1;
      if (w.pos - blockStart > BLOCK_SPLIT) {
        endRows(w, rowsAt);
        sealBlock(w.buf, blockStart, w.pos, BlockType.Entries);
        blockStart = w.pos;
        w.ensure(BLOCK_HEADER_BYTES);
        w.pos += BLOCK_HEADER_BYTES;
        rowsAt = -1;
        table = undefined;
      }
    }, COMMIT_BYTES);
    // a commit that could not take everything pending: rows are pouring in
    if (store.journalSize > 0) this.lastFullCommitAt = performance.now();
    if (rowsAt >= 0) endRows(w, rowsAt);
    if (w.pos > blockStart + BLOCK_HEADER_BYTES) sealBlock(w.buf, blockStart, w.pos, BlockType.Entries);
    else w.pos = blockStart;
    const length = w.pos;
    const maxBytes = this.options.maxBytes;
    this.inFlight = (async () => {
      if (maxBytes !== undefined && this.bytes() + length > maxBytes) {
        throw new Error(`the tables files would pass DATA_MAX_MB (${(maxBytes / 1e6).toFixed(2)} MB)`);
      }
      if (length > 0) {
        await log.handle.write(w.buf, 0, length, log.size);
        await log.handle.datasync();
      }
    })().then(
      () => {
        log.size += length;
        this.inFlight = undefined;
        this.committed.position = Math.max(this.committed.position, upTo);
        this.committed.meta = Math.max(this.committed.meta, metaEpoch);
        this.counters.commits += 1;
        this.counters.recordsCommitted += rows;
        if (this.failing) {
          this.context?.log.info("cluster: the tables files take writes again", { failedCommits: this.failures });
          this.failing = undefined;
          this.failures = 0;
        }
        this.settleCommitted();
        if (this.pending()) this.schedule();
        this.snapshotIfDue();
      },
      (error: Error) => {
        // the rows go back to the journal (the next commit takes them as they are then), and the
        // log is cut back to its last good block
        store.rejournal(drained);
        if (this.log === log) this.logMark = markBefore;
        for (const [key, value] of meta) if (!this.metaChanged.has(key)) this.metaChanged.set(key, value);
        this.inFlight = undefined;
        log.handle.truncate(log.size).catch(() => {});
        // every waiter needed this commit (commits take the journal in order): it fails now
        this.failed(error, this.waiting.splice(0));
      },
    );
  }

  /** Resolve the waiters whose changes are all committed now. */
  private settleCommitted(): void {
    const still: Waiter[] = [];
    for (const w of this.waiting) {
      if (this.committed.position >= w.position && this.committed.meta >= w.meta) w.resolve();
      else still.push(w);
    }
    this.waiting = still;
  }

  private settle(waiters: Waiter[], error?: Error): void {
    for (const w of waiters) {
      if (error) w.reject(error);
      else w.resolve();
    }
  }

  private failed(error: Error, waiters: Waiter[]): void {
    this.counters.commitFailures += 1;
    this.failures += 1;
    const reason = error.message;
    if (this.failing === undefined) {
      this.context?.log.error("cluster: cannot commit to the tables files; writes fail until it can", {
        dir: this.dir,
        error: reason,
      });
    }
    this.failing = reason;
    this.settle(waiters, new ClusterUnavailableError("disk", `this node cannot save changes to its disk (${reason})`));
    // past a size limit, a snapshot may give room back (deleted rows leave the files with it)
    const maxBytes = this.options.maxBytes;
    if (maxBytes !== undefined && this.context && this.context.store.bytes().records < maxBytes / 2) {
      void this.snapshot().catch(() => {});
    }
    if (!this.retry && !this.stopping) {
      this.retry = setTimeout(() => {
        this.retry = undefined;
        this.schedule();
      }, this.options.retryMs ?? 1_000);
      this.retry.unref();
    }
  }

  /**
   * A snapshot once the logs outgrow the last one (checked after commits and by the maintenance
   * pass), or, on the maintenance pass only (`pass`), when values were deleted or tombstones
   * collected since the last: so deletions cost at most one snapshot per pass, not one per commit.
   */
  private snapshotIfDue(pass = false): void {
    if (this.snapshotting || this.stopping || !this.log) return;
    // not while rows pour in (a catch-up, a bulk load): a snapshot then would be outdated at once,
    // and competes with them for the CPU and the disk; the first commit after them starts it
    if (performance.now() - this.lastFullCommitAt < BUSY_MS) return;
    const logs = this.olderLogBytes + this.log.size;
    // deleted values (an erased user) and collected tombstones leave the files with a snapshot
    const forgotten = pass && (this.context?.store.forgotten ?? 0) !== this.forgottenAtSnapshot;
    if (forgotten || logs > Math.max(this.options.snapshotAfterBytes ?? 64 << 20, this.snapshotBytes)) {
      this.snapshot().catch((error: unknown) => {
        this.context?.log.warn("cluster: writing a snapshot of the tables failed; the log goes on", {
          error: (error as Error).message,
        });
      });
    }
  }

  /** Begin a new log, then write a snapshot from memory; commits go on meanwhile. */
  private snapshot(): Promise<void> {
    this.snapshotting ??= (async () => {
      try {
        await this.rotate();
        await this.writeSnapshot(undefined);
      } finally {
        this.snapshotting = undefined;
      }
    })();
    return this.snapshotting;
  }

  /** Commits from now on go to a new log; the current one ends with a block naming it. */
  private async rotate(): Promise<void> {
    const old = this.log;
    if (!old) return;
    this.rotating = true;
    try {
      await this.inFlight?.catch(() => {});
      const next = old.generation + 1;
      const created = await this.createLog(next);
      const w = new ByteWriter(32);
      w.pos = BLOCK_HEADER_BYTES;
      w.varint(next);
      sealBlock(w.buf, 0, w.pos, BlockType.Next);
      await old.handle.write(w.buf, 0, w.pos, old.size);
      await old.handle.datasync();
      await old.handle.close();
      this.olderLogBytes += old.size + w.pos;
      this.log = created;
      this.logMark = newMark();
    } finally {
      this.rotating = false;
      if (this.pending()) this.schedule();
    }
  }

  private async openNewLog(generation: number): Promise<void> {
    this.log = await this.createLog(generation);
    this.olderLogBytes = 0;
    this.logMark = newMark();
  }

  private async createLog(generation: number): Promise<{ handle: FileHandle; generation: number; size: number }> {
    const file = path.join(this.dir, logFileName(generation));
    const handle = await open(file, "w+");
    const head = Buffer.concat([
      preamble(FileKind.Log),
      headerBlock({ cluster: this.options.clusterName, generation, createdAt: new Date(this.now()).toISOString() }),
    ]);
    await handle.write(head, 0, head.length, 0);
    await handle.datasync();
    await syncDir(this.dir);
    return { handle, generation, size: head.length };
  }

  /**
   * Write every row held into a new snapshot that names the current log, a block at a time (a
   * row changed meanwhile is in the log too: reading both gives the newest), then put it in place
   * and drop the logs before the current one.
   */
  private async writeSnapshot(migratedFrom: string | undefined): Promise<void> {
    const store = this.context!.store;
    const log = this.log!;
    const tmp = path.join(this.dir, SNAPSHOT_TMP);
    const forgotten = store.forgotten;
    const handle = await open(tmp, "w");
    let written = 0;
    let rows = 0;
    try {
      const tables: Record<string, number> = {};
      for (const table of store.tableNames()) tables[table] = store.slotCount(table);
      const header: HeaderMeta & { tables: Record<string, number> } = {
        cluster: this.options.clusterName,
        generation: log.generation,
        createdAt: new Date(this.now()).toISOString(),
        log: log.generation,
        tables,
        ...(migratedFrom ? { migratedFrom } : {}),
      };
      const head = Buffer.concat([preamble(FileKind.Snapshot), headerBlock(header)]);
      await handle.write(head, 0, head.length, 0);
      written = head.length;
      const w = new ByteWriter(SNAPSHOT_BLOCK + (64 << 10));
      const mark = newMark();
      const put = async () => {
        sealBlock(w.buf, 0, w.pos, BlockType.Entries);
        await handle.write(w.buf, 0, w.pos, written);
        written += w.pos;
      };
      for (const table of store.tableNames()) {
        for (const unchecked of [false, true]) {
          if (unchecked && store.uncheckedCount(table) === 0) continue;
          let slot = 0;
          while (slot < store.slotCount(table)) {
            if (this.stopping) throw new Error("the node is stopping");
            w.pos = BLOCK_HEADER_BYTES;
            // the dictionary as it is now, before the rows that may use it (nothing runs between)
            writeDictionary(w, store.dictionary, mark);
            const at = beginRows(w, table, unchecked);
            const from = w.pos;
            slot = store.copySlots(table, slot, w, SNAPSHOT_BLOCK, unchecked);
            rows += countRecords(w.buf, from, w.pos);
            endRows(w, at);
            await put();
          }
        }
      }
      w.pos = BLOCK_HEADER_BYTES;
      writeDictionary(w, store.dictionary, mark);
      writeMeta(w, new Map(this.meta));
      if (w.pos > BLOCK_HEADER_BYTES) await put();
      w.pos = BLOCK_HEADER_BYTES;
      w.ensure(64);
      const end = Buffer.from(JSON.stringify({ rows }), "utf8");
      w.bytes(end);
      sealBlock(w.buf, 0, w.pos, BlockType.End);
      await handle.write(w.buf, 0, w.pos, written);
      written += w.pos;
      await handle.datasync();
    } catch (error) {
      await handle.close();
      await rm(tmp, { force: true });
      throw error;
    }
    await handle.close();
    await rename(tmp, path.join(this.dir, SNAPSHOT_FILE));
    await syncDir(this.dir);
    this.snapshotBytes = written;
    // the logs before the current one are in the snapshot now
    for (const name of (await listTablesFiles(this.dir)).logs) {
      if (name < log.generation) await rm(path.join(this.dir, logFileName(name)), { force: true });
    }
    await syncDir(this.dir);
    this.olderLogBytes = 0;
    this.forgottenAtSnapshot = forgotten;
    this.counters.snapshots += 1;
    if (this.pending()) this.schedule();
  }
}

function countRecords(buf: Buffer, start: number, end: number): number {
  let n = 0;
  let pos = start;
  while (pos < end) {
    let len = 0;
    let shift = 1;
    let byte: number;
    do {
      byte = buf[pos++]!;
      len += (byte & 0x7f) * shift;
      shift *= 128;
    } while (byte >= 0x80);
    pos += len;
    n += 1;
  }
  return n;
}

/** fsync a folder, so a file created or renamed in it is there after a crash. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The persistence a gossip node starts (Redis mode skips it: Redis is its durable store). */
export function filePersistence(options: FilePersistenceOptions): FilePersistence {
  return new FilePersistence(options);
}

export const TABLES_FILES = { snapshot: SNAPSHOT_FILE, log: logFileName } as const;
