/** `npm run cluster -- backup <file>`: a consistent copy of a node's tables files while it runs. */
import path from "node:path";
import { acceptTablesFiles, backupTables } from "#cluster";

/**
 * Copy DATA_DIR's tables files (snapshot and change logs, every block checked) into one file at
 * `target`: the tables as of one commit, even while the node keeps committing.
 * DATA_DIR is `--data-dir`, else the DATA_DIR setting, else the server's default for PORT.
 */
export async function backup(target: string, dataDir?: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const dir = path.resolve(dataDir ?? (env.DATA_DIR?.trim() || path.join(".data", `node-${env.PORT ?? 3000}`)));
  const to = path.resolve(target);
  const started = Date.now();
  const bytes = await backupTables(dir, to);
  return `backed up the tables files of ${dir} to ${to} (${(bytes / 1024 / 1024).toFixed(1)} MB, ${Date.now() - started} ms)`;
}

/**
 * `npm run cluster -- accept-file [--data-dir DIR]`: vouch for tables files last in step with
 * their cluster longer ago than the tombstone horizon, when the whole cluster was stopped that
 * long. Leaves a note beside them that the next start takes as the last contact.
 */
export async function acceptFile(dataDir?: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const dir = path.resolve(dataDir ?? (env.DATA_DIR?.trim() || path.join(".data", `node-${env.PORT ?? 3000}`)));
  const note = await acceptTablesFiles(dir, Date.now());
  return `${note}: the tables files of ${dir} are noted as in step with their cluster now; start the node`;
}
