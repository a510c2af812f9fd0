/** `npm run cluster -- backup <file>`: a consistent copy of a node's tables file while it runs. */
import { statSync } from "node:fs";
import path from "node:path";
import { acceptTablesFile, backupTablesFile } from "#cluster";
import { TABLES_FILE } from "./persistence";

/**
 * Copy DATA_DIR's tables file to `target` with VACUUM INTO: one read transaction, so the copy is
 * the file as of one instant even while the node keeps committing (WAL lets both go on).
 * DATA_DIR is `--data-dir`, else the DATA_DIR setting, else the server's default for PORT.
 */
export function backup(target: string, dataDir?: string, env: NodeJS.ProcessEnv = process.env): string {
  const dir = path.resolve(dataDir ?? (env.DATA_DIR?.trim() || path.join(".data", `node-${env.PORT ?? 3000}`)));
  const source = path.join(dir, TABLES_FILE);
  const to = path.resolve(target);
  const started = Date.now();
  backupTablesFile(source, to);
  const bytes = statSync(to).size;
  return `backed up ${source} to ${to} (${(bytes / 1024 / 1024).toFixed(1)} MB, ${Date.now() - started} ms)`;
}

/**
 * `npm run cluster -- accept-file [--data-dir DIR]`: vouch for a tables file last in step with its
 * cluster longer ago than the tombstone horizon, when the whole cluster was stopped that long.
 * The node must be stopped.
 */
export function acceptFile(dataDir?: string, env: NodeJS.ProcessEnv = process.env): string {
  const dir = path.resolve(dataDir ?? (env.DATA_DIR?.trim() || path.join(".data", `node-${env.PORT ?? 3000}`)));
  const file = path.join(dir, TABLES_FILE);
  acceptTablesFile(file, Date.now());
  return `${file}: noted as in step with its cluster now; start the node`;
}
