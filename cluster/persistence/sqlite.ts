/**
 * The tables file of format 1 (before decision 015): one SQLite file, a row per (table, key) with
 * its value as JSON. Read once, on a copy, to migrate it (migrate.ts); the writer is kept so
 * tests can make such files as that release did.
 */
import { accessSync, constants, existsSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { RecordEnvelope } from "../store";
import { PersistenceError } from "./types";

/** The SQLite layout's format number; a file with a greater one is refused, never rewritten. */
export const SQLITE_FORMAT_VERSION = 1;

// Node 22 prints "SQLite is an experimental feature" when node:sqlite loads. Only that warning is
// dropped; every other warning still reaches the default handler. The module is loaded here, after
// the filter, because a static import would load it before any code of ours runs.
function loadSqlite(): typeof import("node:sqlite") {
  const emit = process.emitWarning;
  process.emitWarning = function (this: NodeJS.Process, warning: string | Error, ...rest: unknown[]) {
    const text = typeof warning === "string" ? warning : warning.message;
    const type = typeof rest[0] === "string" ? rest[0] : (rest[0] as { type?: string } | undefined)?.type;
    const name = typeof warning === "string" ? type : warning.name;
    if (name === "ExperimentalWarning" && /SQLite/i.test(text)) return;
    return (emit as (...args: unknown[]) => void).call(this, warning, ...rest);
  } as typeof process.emitWarning;
  try {
    return createRequire(import.meta.url)("node:sqlite") as typeof import("node:sqlite");
  } finally {
    process.emitWarning = emit;
  }
}

let sqlite: typeof import("node:sqlite") | undefined;

export interface OpenOptions {
  /** the file must say it belongs to this cluster */
  clusterName: string;
  /** refuse writes past this size (SQLite's max_page_count): a quota, and how tests fill a "disk" */
  maxBytes?: number;
  /** who is opening it, for the refusal lines: e.g. "DATA_DIR" */
  label?: string;
  /** the path to name in refusal lines, when `file` is a copy of it */
  shownAs?: string;
}

const SCHEMA = `
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE writers (id INTEGER PRIMARY KEY, node TEXT NOT NULL UNIQUE) STRICT;
CREATE TABLE rows (
  tbl TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT,
  t INTEGER NOT NULL,
  c INTEGER NOT NULL,
  w INTEGER NOT NULL,
  PRIMARY KEY (tbl, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX tombstones ON rows (t) WHERE value IS NULL;
`;

/**
 * One node's tables file: one row per (table, key) with the value as JSON (NULL for a tombstone)
 * and the stamp; the writer's node id is kept once in `writers`. WAL, synchronous=FULL.
 */
export class TablesFile {
  private readonly writerIds = new Map<string, number>();
  private readonly writerNames = new Map<number, string>();
  private readonly upsert: StatementSync;
  private readonly addWriter: StatementSync;
  private readonly pageSize: number;

  private constructor(
    private readonly db: DatabaseSync,
    readonly file: string,
    /** true when the file held tables from an earlier run */
    readonly existed: boolean,
  ) {
    this.upsert = db.prepare(
      `INSERT INTO rows (tbl, key, value, t, c, w) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (tbl, key) DO UPDATE SET value = excluded.value, t = excluded.t, c = excluded.c, w = excluded.w`,
    );
    this.addWriter = db.prepare("INSERT INTO writers (node) VALUES (?) RETURNING id");
    for (const row of db.prepare("SELECT id, node FROM writers").all()) {
      this.writerIds.set(String(row.node), Number(row.id));
      this.writerNames.set(Number(row.id), String(row.node));
    }
    this.pageSize = Number(db.prepare("PRAGMA page_size").get()?.page_size ?? 4096);
  }

  /**
   * Open (or create) the file. A file that is corrupt, of a newer format, of another cluster or
   * not ours is refused with a PersistenceError before anything is written to it.
   */
  static open(file: string, options: OpenOptions): TablesFile {
    sqlite ??= loadSqlite();
    const shown = options.shownAs ?? file;
    const where = options.label ? `${options.label} file ${shown}` : shown;
    const existed = existsSync(file) && statSync(file).size > 0;
    try {
      accessSync(path.dirname(file), constants.R_OK | constants.W_OK | constants.X_OK);
      if (existed) accessSync(file, constants.R_OK | constants.W_OK);
    } catch (error) {
      throw new PersistenceError(
        "unreadable",
        `cannot read and write ${where} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}): give the server's user read and write access to the file and its folder, or point DATA_DIR elsewhere`,
      );
    }
    let db: DatabaseSync;
    try {
      db = new sqlite.DatabaseSync(file);
    } catch (error) {
      throw new PersistenceError(
        "unreadable",
        `cannot open ${where} (${(error as Error).message}): check its permissions, or point DATA_DIR elsewhere`,
      );
    }
    try {
      if (existed) TablesFile.check(db, where, options.clusterName);
      else TablesFile.create(db, options.clusterName);
      db.exec("PRAGMA synchronous = FULL");
      if (options.maxBytes !== undefined) {
        const pageSize = Number(db.prepare("PRAGMA page_size").get()?.page_size ?? 4096);
        db.exec(`PRAGMA max_page_count = ${Math.max(1, Math.floor(options.maxBytes / pageSize))}`);
      }
      return new TablesFile(db, shown, existed);
    } catch (error) {
      db.close();
      if (error instanceof PersistenceError) throw error;
      throw corruptOrUnreadable(error, where);
    }
  }

  private static check(db: DatabaseSync, where: string, clusterName: string): void {
    let meta: Map<string, string>;
    try {
      const hasMeta = db.prepare("SELECT 1 AS one FROM sqlite_schema WHERE type = 'table' AND name = 'meta'").get();
      if (!hasMeta) {
        throw new PersistenceError(
          "foreign",
          `${where} is an SQLite file but not a PwdlessGs tables file: move it away, or point DATA_DIR elsewhere`,
        );
      }
      meta = new Map(
        db
          .prepare("SELECT key, value FROM meta")
          .all()
          .map((r) => [String(r.key), String(r.value)]),
      );
    } catch (error) {
      if (error instanceof PersistenceError) throw error;
      throw corruptOrUnreadable(error, where);
    }
    const format = Number(meta.get("format"));
    if (!Number.isInteger(format) || format < 1) {
      throw new PersistenceError(
        "corrupt",
        `${where} has no valid format version: it is damaged; restore a backup (see README, Backup and restore) or move it away to start this node empty and let it catch up from its peers`,
      );
    }
    if (format > SQLITE_FORMAT_VERSION) {
      throw new PersistenceError(
        "newer-format",
        `${where} has format ${format}, newer than this version reads (${SQLITE_FORMAT_VERSION}): run the newer version of PwdlessGs, or restore a backup made by this one`,
      );
    }
    const owner = meta.get("cluster");
    if (owner !== clusterName) {
      throw new PersistenceError(
        "other-cluster",
        `${where} belongs to cluster "${owner}", not "${clusterName}": set CLUSTER_NAME=${owner}, or point DATA_DIR at this cluster's folder`,
      );
    }
    // the file looks like ours: WAL is already its mode, so this only reopens it that way
    db.exec("PRAGMA journal_mode = WAL");
  }

  private static create(db: DatabaseSync, clusterName: string): void {
    // auto_vacuum must be chosen before the first table exists; it lets maintenance give pages back
    db.exec("PRAGMA auto_vacuum = INCREMENTAL");
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("BEGIN");
    db.exec(SCHEMA);
    const meta = db.prepare("INSERT INTO meta (key, value) VALUES (?, ?)");
    meta.run("format", String(SQLITE_FORMAT_VERSION));
    meta.run("cluster", clusterName);
    meta.run("createdAt", new Date().toISOString());
    db.exec("COMMIT");
  }

  /** Every row, in slices of at most `size` records, so the caller can yield between them. */
  *slices(size: number): Generator<RecordEnvelope[]> {
    let tables: string[];
    let page: StatementSync;
    try {
      // one table at a time, in key order: the table name is not read (nor allocated) per row, and
      // each slice is one `all()` (cheaper than stepping an iterator) that ends where the next begins
      tables = this.db
        .prepare("SELECT DISTINCT tbl FROM rows")
        .all()
        .map((r) => String(r.tbl));
      page = this.db.prepare("SELECT key, value, t, c, w FROM rows WHERE tbl = ? AND key > ? ORDER BY key LIMIT ?");
      page.setReturnArrays(true);
    } catch (error) {
      throw corruptOrUnreadable(error, this.file);
    }
    for (const table of tables) {
      let after = "";
      for (;;) {
        let slice: RecordEnvelope[];
        try {
          const rows = page.all(table, after, size) as unknown as [string, string | null, number, number, number][];
          slice = rows.map((row) => {
            const n = this.writerNames.get(row[4]);
            if (n === undefined) throw new PersistenceError("corrupt", `a row of ${this.file} names an unknown writer`);
            return {
              table,
              key: row[0],
              value: row[1] === null ? null : JSON.parse(row[1]),
              stamp: { t: row[2], c: row[3], n },
            };
          });
        } catch (error) {
          if (error instanceof PersistenceError) throw error;
          throw corruptOrUnreadable(error, this.file);
        }
        if (slice.length === 0) break;
        yield slice;
        if (slice.length < size) break;
        after = slice[slice.length - 1]!.key;
      }
    }
  }

  /** Upsert records in one transaction: committed (fsynced) when this returns; throws if not. */
  write(records: Iterable<RecordEnvelope>): void {
    this.db.exec("BEGIN IMMEDIATE");
    try {
      for (const r of records) {
        this.upsert.run(
          r.table,
          r.key,
          r.value === null ? null : JSON.stringify(r.value),
          r.stamp.t,
          r.stamp.c,
          this.writer(r.stamp.n),
        );
      }
      this.db.exec("COMMIT");
    } catch (error) {
      if (this.db.isTransaction) this.db.exec("ROLLBACK");
      // ids handed out inside the rolled-back transaction no longer exist
      this.reloadWriters();
      throw error;
    }
  }

  /** A value of the file's `meta` table (format, cluster, lastContactAt…). */
  meta(key: string): string | undefined {
    const row = this.db.prepare("SELECT value FROM meta WHERE key = ?").get(key);
    return row === undefined ? undefined : String(row.value);
  }

  /** Set a `meta` value, committed when this returns. */
  setMeta(key: string, value: string): void {
    this.db
      .prepare("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
      .run(key, value);
  }

  /** Delete tombstones stamped before `horizon` (ms), at most `limit`; returns how many. */
  deleteTombstones(horizon: number, limit: number): number {
    const result = this.db
      .prepare("DELETE FROM rows WHERE (tbl, key) IN (SELECT tbl, key FROM rows WHERE value IS NULL AND t < ? LIMIT ?)")
      .run(horizon, limit);
    return Number(result.changes);
  }

  /** Fold the WAL into the file and truncate it to zero bytes. */
  checkpoint(): void {
    this.db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  }

  /** Free pages and total pages: how much a vacuum would give back. */
  pages(): { free: number; total: number; pageSize: number } {
    const free = Number(this.db.prepare("PRAGMA freelist_count").get()?.freelist_count ?? 0);
    const total = Number(this.db.prepare("PRAGMA page_count").get()?.page_count ?? 0);
    return { free, total, pageSize: this.pageSize };
  }

  /** Give up to `pages` free pages back to the file system. */
  vacuumStep(pages: number): void {
    this.db.exec(`PRAGMA incremental_vacuum(${Math.max(1, Math.floor(pages))})`);
  }

  /** A consistent copy of the file at `target`, taken while the node keeps writing (VACUUM INTO). */
  backupTo(target: string): void {
    this.db.prepare("VACUUM INTO ?").run(target);
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }

  private writer(node: string): number {
    let id = this.writerIds.get(node);
    if (id === undefined) {
      id = Number(this.addWriter.get(node)?.id);
      this.writerIds.set(node, id);
      this.writerNames.set(id, node);
    }
    return id;
  }

  private reloadWriters(): void {
    this.writerIds.clear();
    this.writerNames.clear();
    for (const row of this.db.prepare("SELECT id, node FROM writers").all()) {
      this.writerIds.set(String(row.node), Number(row.id));
      this.writerNames.set(Number(row.id), String(row.node));
    }
  }
}

/**
 * Open an existing tables file read-only for a copy, e.g. `npm run cluster -- backup`, while its
 * node runs (WAL lets readers and the writer go on together).
 */
export function backupTablesFile(source: string, target: string): void {
  sqlite ??= loadSqlite();
  if (!existsSync(source)) throw new PersistenceError("unreadable", `there is no tables file at ${source}`);
  if (existsSync(target)) throw new PersistenceError("unreadable", `${target} exists already: name a new file`);
  const db = new sqlite.DatabaseSync(source, { readOnly: true });
  try {
    db.prepare("VACUUM INTO ?").run(target);
  } catch (error) {
    throw corruptOrUnreadable(error, source);
  } finally {
    db.close();
  }
}

function corruptOrUnreadable(error: unknown, where: string): PersistenceError {
  const message = error instanceof Error ? error.message : String(error);
  if (/not a database|malformed|corrupt|unknown writer|JSON/i.test(message) || error instanceof SyntaxError) {
    return new PersistenceError(
      "corrupt",
      `${where} is damaged (${message}): restore a backup (see README, Backup and restore), or move the file away to start this node empty and let it catch up from its peers`,
    );
  }
  return new PersistenceError(
    "unreadable",
    `cannot read ${where} (${message}): check the disk and the file's permissions, or point DATA_DIR elsewhere`,
  );
}

/**
 * Bulk-write records into a tables file (created when missing), one transaction per slice:
 * seeding for benchmarks and imports. The node must not be running on the file.
 */
export function writeTablesFile(file: string, clusterName: string, slices: Iterable<RecordEnvelope[]>): number {
  const tables = TablesFile.open(file, { clusterName });
  let written = 0;
  try {
    for (const slice of slices) {
      tables.write(slice);
      written += slice.length;
    }
    tables.checkpoint();
  } finally {
    tables.close();
  }
  return written;
}

/** The `meta` key holding when the node was last in step with its cluster (ms since the epoch). */
export const LAST_CONTACT_KEY = "lastContactAt";
