/**
 * `npm run cluster -- backup <file>`: the tables files of a DATA_DIR (snapshot and change logs)
 * copied into one file, while the node runs. Every block is checked on the way (a backup of a
 * damaged file fails, naming it), and the copy is the state of one commit: the snapshot, then
 * each log up to its last whole block. A snapshot the node replaced meanwhile is read anew.
 */
import { existsSync } from "node:fs";
import { open, readdir, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { BLOCK_HEADER_BYTES, BlockType, FileKind, headerBlock, preamble, sealBlock } from "./blocks";
import { ACCEPTED_FILE, FORMAT_1_FILE, readChain, SNAPSHOT_FILE } from "./chain";
import { PersistenceError } from "./types";

const ATTEMPTS = 5;

/** Copy the tables files of `dir` into `target` (a new file); returns its size. */
export async function backupTables(dir: string, target: string, clusterName?: string): Promise<number> {
  if (!existsSync(path.join(dir, SNAPSHOT_FILE))) {
    throw new PersistenceError("unreadable", `there are no tables files in ${dir} (no ${SNAPSHOT_FILE})`);
  }
  if (existsSync(target)) throw new PersistenceError("unreadable", `${target} exists already: name a new file`);
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await copyOnce(dir, target, clusterName);
    } catch (error) {
      // the node wrote a new snapshot and dropped the log we were about to read: start again
      if (error instanceof PersistenceError && error.problem === "missing-log" && attempt < ATTEMPTS) continue;
      throw error;
    }
  }
}

async function copyOnce(dir: string, target: string, clusterName: string | undefined): Promise<number> {
  const tmp = `${target}.partial`;
  const handle = await open(tmp, "wx");
  let written = 0;
  const write = async (bytes: Uint8Array) => {
    await handle.write(bytes, 0, bytes.length, written);
    written += bytes.length;
  };
  try {
    await readChain(
      dir,
      clusterName,
      { label: "DATA_DIR" },
      {
        file: async (kind, header) => {
          if (kind === FileKind.Log) return;
          await write(preamble(FileKind.Backup));
          await write(headerBlock({ cluster: header.cluster, generation: 0, createdAt: new Date().toISOString() }));
        },
        entries: async (block) => {
          // the block as it is in the file: its checksum still holds
          await write(block.buf.subarray(block.start - BLOCK_HEADER_BYTES, block.end));
        },
      },
    );
    const end = Buffer.alloc(BLOCK_HEADER_BYTES + 2);
    end.write("{}", BLOCK_HEADER_BYTES);
    sealBlock(end, 0, end.length, BlockType.End);
    await write(end);
    await handle.datasync();
  } catch (error) {
    await handle.close();
    await rm(tmp, { force: true });
    throw error;
  }
  await handle.close();
  await rename(tmp, target);
  return written;
}

/**
 * `npm run cluster -- accept-file`: an operator vouches for a DATA_DIR last in step with its
 * cluster longer ago than the tombstone horizon (the whole cluster was stopped that long, so no
 * deletion was forgotten meanwhile). Leaves a note the next start takes as the last contact; the
 * tables files are not touched.
 */
export async function acceptTablesFiles(dir: string, now: number): Promise<string> {
  const names = await readdir(dir).catch(() => [] as string[]);
  if (!names.includes(SNAPSHOT_FILE) && !names.includes(FORMAT_1_FILE)) {
    throw new PersistenceError("unreadable", `there are no tables files in ${dir}`);
  }
  const note = path.join(dir, ACCEPTED_FILE);
  await writeFile(note, `${now}\n`, { mode: 0o600 });
  return note;
}
