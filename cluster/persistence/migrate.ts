/**
 * Format 1 → format 2: a DATA_DIR that holds only `tables.db` (SQLite, from before decision 015)
 * is read once into the store. The file is never opened where it lies: it and its `-wal` and
 * `-shm` are copied to a folder beside them and the copy is opened (SQLite folds a WAL into the
 * file it opens), so a refused file, or one whose migration is cut short, stays byte for byte
 * as it was. Once the new files are written, the old ones move to `format-1-before-migration/`.
 */
import { copyFile, mkdir, readdir, rename, rm } from "node:fs/promises";
import { existsSync } from "node:fs";
import path from "node:path";
import type { ClusterStore } from "../store";
import { yieldToEventLoop } from "../slicer";
import { checkAccess, FORMAT_1_FILE, type Where } from "./chain";
import { LAST_CONTACT_KEY, TablesFile } from "./sqlite";

const SUFFIXES = ["", "-wal", "-shm"];
export const MIGRATED_DIR = "format-1-before-migration";

/** Read a format-1 file (through a copy) into the store, as this node's own rows. */
export async function readFormat1(
  dir: string,
  clusterName: string,
  store: ClusterStore,
  where: Where,
  /** called with the file's last contact (meta), before a row is read; may refuse the file */
  beforeRows?: (lastContactAt: string | undefined) => Promise<void>,
): Promise<{ restored: number; refused: number }> {
  const original = path.join(dir, FORMAT_1_FILE);
  for (const suffix of SUFFIXES) {
    if (existsSync(original + suffix)) await checkAccess(original + suffix, where);
  }
  // copies left by a start that was killed while migrating go first
  for (const name of await readdir(dir)) {
    if (name.startsWith(".format-1-copy-")) await rm(path.join(dir, name), { recursive: true, force: true });
  }
  const copyDir = path.join(dir, `.format-1-copy-${process.pid}`);
  await mkdir(copyDir);
  let restored = 0;
  let refused = 0;
  try {
    const copy = path.join(copyDir, FORMAT_1_FILE);
    for (const suffix of SUFFIXES) {
      if (existsSync(original + suffix)) await copyFile(original + suffix, copy + suffix);
    }
    const file = TablesFile.open(copy, { clusterName, label: where.label, shownAs: original });
    try {
      await beforeRows?.(file.meta(LAST_CONTACT_KEY));
      for (const slice of file.slices(20_000)) {
        for (const record of slice) {
          if (store.applyRemote(record, "restore") === "rejected") refused += 1;
          else restored += 1;
        }
        await yieldToEventLoop();
      }
    } finally {
      file.close();
    }
  } finally {
    await rm(copyDir, { recursive: true, force: true });
  }
  store.restored();
  return { restored, refused };
}

/** Move the format-1 files out of the way (kept, in case the operator wants them). */
export async function moveFormat1Aside(dir: string): Promise<string> {
  const target = path.join(dir, MIGRATED_DIR);
  await mkdir(target, { recursive: true });
  const original = path.join(dir, FORMAT_1_FILE);
  for (const suffix of SUFFIXES) {
    if (existsSync(original + suffix)) await rename(original + suffix, path.join(target, FORMAT_1_FILE + suffix));
  }
  return target;
}
