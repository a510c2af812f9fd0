/**
 * Zero-config discovery on one host: a folder per cluster under the OS temp dir, one JSON file per
 * live node (its peer id, addresses, pid), refreshed by a heartbeat and removed on stop. Nodes
 * read the folder every second. No network, no multicast.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { z } from "zod";
import type { Logger } from "../types";

export const registryEntrySchema = z.object({
  peerId: z.string().min(1).max(128),
  addrs: z.array(z.string().max(256)).max(32),
  pid: z.number().int().positive(),
  clusterName: z.string(),
  updatedAt: z.number(),
});
export type RegistryEntry = z.infer<typeof registryEntrySchema>;

export function defaultRegistryDir(clusterName: string): string {
  return path.join(os.tmpdir(), "pwdless-gs-cluster", clusterName);
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

export interface LocalRegistryOptions {
  dir: string;
  clusterName: string;
  peerId: string;
  addrs: () => string[];
  staleMs: number;
  now: () => number;
  log: Logger;
}

export class LocalRegistry {
  private readonly file: string;
  private stopped = false;

  constructor(private readonly options: LocalRegistryOptions) {
    this.file = path.join(options.dir, `${options.peerId}.json`);
  }

  /** Write (or refresh) this node's entry. */
  async heartbeat(): Promise<void> {
    if (this.stopped) return;
    const entry: RegistryEntry = {
      peerId: this.options.peerId,
      addrs: this.options.addrs(),
      pid: process.pid,
      clusterName: this.options.clusterName,
      updatedAt: this.options.now(),
    };
    await mkdir(this.options.dir, { recursive: true, mode: 0o700 });
    const temporary = `${this.file}.${process.pid}.tmp`;
    await writeFile(temporary, JSON.stringify(entry), { mode: 0o600 });
    await rename(temporary, this.file);
  }

  /** The other live nodes of this cluster; removes entries of processes that are gone. */
  async scan(): Promise<RegistryEntry[]> {
    let names: string[];
    try {
      names = await readdir(this.options.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw error;
    }
    const out: RegistryEntry[] = [];
    const now = this.options.now();
    for (const name of names) {
      if (!name.endsWith(".json")) continue;
      const file = path.join(this.options.dir, name);
      const entry = await this.read(file);
      if (!entry || entry.peerId === this.options.peerId) continue;
      if (entry.clusterName !== this.options.clusterName) continue;
      if (!processAlive(entry.pid)) {
        await rm(file, { force: true }).catch(() => undefined);
        continue;
      }
      if (now - entry.updatedAt > this.options.staleMs) continue;
      out.push(entry);
    }
    return out;
  }

  async remove(): Promise<void> {
    this.stopped = true;
    await rm(this.file, { force: true });
  }

  private async read(file: string): Promise<RegistryEntry | undefined> {
    try {
      const parsed = registryEntrySchema.safeParse(JSON.parse(await readFile(file, "utf8")));
      return parsed.success ? parsed.data : undefined;
    } catch {
      // a file being replaced, or not ours to read: the next scan sees it
      return undefined;
    }
  }
}
