/**
 * The tables files of a DATA_DIR (format 2) and how they are read: `tables.snap`, the snapshot,
 * names the change log that follows it; a log that was continued in a newer one ends with a NEXT
 * block naming it. `readChain` walks snapshot then logs, checks every header and checksum, and
 * hands each entries block to the caller; it only reads (a refused file is left as it was). Every
 * problem becomes a PersistenceError whose message is one line saying what and how to recover.
 */
import { constants, existsSync } from "node:fs";
import { access, readdir, stat } from "node:fs/promises";
import path from "node:path";
import { cursor, readVarint } from "../codec";
import {
  BlockReader,
  BlockType,
  FileKind,
  FileProblemError,
  FORMAT_VERSION,
  type Block,
  type HeaderMeta,
} from "./blocks";
import { PersistenceError } from "./types";

export const SNAPSHOT_FILE = "tables.snap";
export const SNAPSHOT_TMP = "tables.snap.tmp";
/**
 * `npm run cluster -- accept-file` writes here when the node is stopped (an operator vouches for
 * files last in step with their cluster longer ago than the tombstone horizon): a time in ms,
 * taken as the last contact at the next start, then kept in the files and this note removed.
 * The tables files themselves are never touched by the command.
 */
export const ACCEPTED_FILE = "tables.accepted";
/** the format-1 file (SQLite), migrated on first start */
export const FORMAT_1_FILE = "tables.db";
const LOG_FILE = /^tables-(\d{6,})\.log$/;

export const logFileName = (generation: number) => `tables-${String(generation).padStart(6, "0")}.log`;

/** What a refusal line names the files as ("DATA_DIR tables file /…/tables.snap"). */
export interface Where {
  label: string;
}

const RECOVER =
  "restore a backup (see README, Backup and restore), or move the tables files away to start this node empty and let it catch up from its peers";

export function describe(where: Where, file: string): string {
  return `${where.label} ${path.basename(file).endsWith(".log") ? "change log" : "tables file"} ${file}`;
}

/** A PersistenceError for a file problem found while reading. */
export function refusal(error: unknown, where: Where, file: string): PersistenceError {
  const name = describe(where, file);
  if (error instanceof PersistenceError) return error;
  if (error instanceof FileProblemError) {
    const p = error.problem;
    if (p.kind === "newer-format") {
      return new PersistenceError(
        "newer-format",
        `${name} has format ${p.format}, newer than this version reads (${FORMAT_VERSION}): run the newer version of PwdlessGs, or restore a backup made by this one`,
      );
    }
    if (p.kind === "foreign") {
      return new PersistenceError(
        "foreign",
        `${name} is ${p.what}, not a PwdlessGs tables file: move it away, or point DATA_DIR elsewhere`,
      );
    }
    return new PersistenceError("corrupt", `${name} is damaged (${p.detail}): ${RECOVER}`);
  }
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "EACCES" || code === "EPERM") {
    return new PersistenceError(
      "unreadable",
      `cannot read and write ${name} (${code}): give the server's user read and write access to the file and its folder, or point DATA_DIR elsewhere`,
    );
  }
  if (error instanceof Error && (error.name === "CodecError" || error instanceof SyntaxError)) {
    return new PersistenceError("corrupt", `${name} is damaged (${error.message}): ${RECOVER}`);
  }
  return new PersistenceError(
    "unreadable",
    `cannot read ${name} (${code ?? (error as Error).message}): check the disk and the file's permissions, or point DATA_DIR elsewhere`,
  );
}

export interface Listing {
  snapshot: boolean;
  /** generations of the change logs present, in order */
  logs: number[];
  format1: boolean;
  tmp: boolean;
}

export async function listTablesFiles(dir: string): Promise<Listing> {
  const names = await readdir(dir);
  const logs: number[] = [];
  for (const name of names) {
    const match = LOG_FILE.exec(name);
    if (match) logs.push(Number(match[1]));
  }
  logs.sort((a, b) => a - b);
  return {
    snapshot: names.includes(SNAPSHOT_FILE),
    logs,
    format1: names.includes(FORMAT_1_FILE),
    tmp: names.includes(SNAPSHOT_TMP),
  };
}

/** Refuse now, naming the file, when the server's user cannot read and write it. */
export async function checkAccess(file: string, where: Where): Promise<void> {
  try {
    await access(file, constants.R_OK | constants.W_OK);
  } catch (error) {
    throw refusal(error, where, file);
  }
}

export interface ChainEnd {
  /** the log commits go on in */
  generation: number;
  file: string;
  /** where its good blocks end: past it, a write cut short by a crash (never acknowledged) */
  goodBytes: number;
  torn: boolean;
  /** every log of the chain, oldest first */
  chain: number[];
}

export interface ChainVisitor {
  /** a file of the chain begins (its header read and checked) */
  file(kind: FileKind, header: HeaderMeta, file: string): void | Promise<void>;
  /** one entries block; `buf[start…end)` is valid until this returns */
  entries(block: Block, file: string): void | Promise<void>;
}

async function readHeader(reader: BlockReader, file: string, clusterName: string | undefined, where: Where) {
  const first = await reader.next();
  if (!first || first.type !== BlockType.Header) {
    throw new PersistenceError("corrupt", `${describe(where, file)} is damaged (it has no header): ${RECOVER}`);
  }
  let header: HeaderMeta;
  try {
    header = JSON.parse(first.buf.toString("utf8", first.start, first.end)) as HeaderMeta;
  } catch {
    throw new PersistenceError(
      "corrupt",
      `${describe(where, file)} is damaged (its header is not readable): ${RECOVER}`,
    );
  }
  if (typeof header.cluster !== "string" || !Number.isSafeInteger(header.generation)) {
    throw new PersistenceError("corrupt", `${describe(where, file)} is damaged (its header is incomplete): ${RECOVER}`);
  }
  if (clusterName !== undefined && header.cluster !== clusterName) {
    throw new PersistenceError(
      "other-cluster",
      `${describe(where, file)} belongs to cluster "${header.cluster}", not "${clusterName}": set CLUSTER_NAME=${header.cluster}, or point DATA_DIR at this cluster's folder`,
    );
  }
  return header;
}

async function openReader(file: string, kinds: FileKind[], where: Where): Promise<BlockReader> {
  try {
    return await BlockReader.open(file, kinds);
  } catch (error) {
    throw refusal(error, where, file);
  }
}

/**
 * Read the snapshot and every change log after it, in order. Returns the snapshot's header and
 * where commits go on (undefined for a restored backup: no log follows it).
 */
export async function readChain(
  dir: string,
  clusterName: string | undefined,
  where: Where,
  visitor: ChainVisitor,
): Promise<{ header: HeaderMeta; kind: FileKind; end: ChainEnd | undefined }> {
  const snapshotFile = path.join(dir, SNAPSHOT_FILE);
  const snapshot = await openReader(snapshotFile, [FileKind.Snapshot, FileKind.Backup], where);
  let header: HeaderMeta;
  try {
    header = await readHeader(snapshot, snapshotFile, clusterName, where);
    await visitor.file(snapshot.kind, header, snapshotFile);
    let ended = false;
    for (;;) {
      const b = await snapshot.next();
      if (!b) break;
      if (ended)
        throw new FileProblemError({ kind: "damaged", detail: `it goes on past its end, at byte ${b.offset}` });
      if (b.type === BlockType.Entries) await visitor.entries(b, snapshotFile);
      else if (b.type === BlockType.End) ended = true;
      else throw new FileProblemError({ kind: "damaged", detail: `an unexpected block at byte ${b.offset}` });
    }
    if (!ended) {
      const detail =
        snapshot.tornAt !== undefined
          ? `it ends at byte ${snapshot.size}, inside a block that starts at byte ${snapshot.tornAt}: it was cut short`
          : "it lacks its end: it was cut short";
      throw new FileProblemError({ kind: "damaged", detail });
    }
  } catch (error) {
    throw refusal(error, where, snapshotFile);
  } finally {
    await snapshot.close();
  }
  if (snapshot.kind === FileKind.Backup || header.log === undefined)
    return { header, kind: snapshot.kind, end: undefined };
  const chain: number[] = [];
  let generation = header.log;
  for (;;) {
    const file = path.join(dir, logFileName(generation));
    if (!existsSync(file)) {
      const after = chain.length === 0 ? `the snapshot ${snapshotFile} names it` : `the change log before it names it`;
      throw new PersistenceError(
        "missing-log",
        `${describe(where, file)} is missing (${after}): it holds what this node acknowledged since its last snapshot, so the node does not start without it. Put it back if it was moved; else restore a backup, or move the tables files away to start this node empty and let it catch up from its peers (changes only this node held are then lost)`,
      );
    }
    chain.push(generation);
    const log = await openReader(file, [FileKind.Log], where);
    let next: number | undefined;
    try {
      const logHeader = await readHeader(log, file, clusterName, where);
      if (logHeader.generation !== generation) {
        throw new FileProblemError({ kind: "damaged", detail: `its header says generation ${logHeader.generation}` });
      }
      await visitor.file(FileKind.Log, logHeader, file);
      for (;;) {
        const b = await log.next();
        if (!b) break;
        if (next !== undefined)
          throw new FileProblemError({ kind: "damaged", detail: `it goes on past its end, at byte ${b.offset}` });
        if (b.type === BlockType.Entries) await visitor.entries(b, file);
        else if (b.type === BlockType.Next) {
          cursor.pos = b.start;
          next = readVarint(b.buf);
          if (next !== generation + 1)
            throw new FileProblemError({ kind: "damaged", detail: `it continues in generation ${next}` });
        } else throw new FileProblemError({ kind: "damaged", detail: `an unexpected block at byte ${b.offset}` });
      }
      if (next !== undefined && log.tornAt !== undefined) {
        throw new FileProblemError({ kind: "damaged", detail: `it ends in a broken block after naming the next log` });
      }
    } catch (error) {
      throw refusal(error, where, file);
    } finally {
      await log.close();
    }
    if (next === undefined) {
      return {
        header,
        kind: snapshot.kind,
        end: { generation, file, goodBytes: log.tornAt ?? log.position, torn: log.tornAt !== undefined, chain },
      };
    }
    generation = next;
  }
}

/** Does a change log hold any commit (beyond its header)? Unreadable or damaged logs count as holding some. */
export async function logHasCommits(file: string): Promise<boolean> {
  // a rotation killed between creating the next log and writing its header leaves it empty: no
  // commit can have gone into it (commits follow the header's fdatasync and the NEXT block)
  if ((await stat(file).catch(() => undefined))?.size === 0) return false;
  try {
    const reader = await BlockReader.open(file, [FileKind.Log]);
    try {
      await reader.next();
      return (await reader.next()) !== undefined;
    } finally {
      await reader.close();
    }
  } catch {
    return true;
  }
}
