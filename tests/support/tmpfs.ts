/** A small real filesystem (tmpfs) a test can fill up: how a full disk is met for real. Needs root. */
import { spawnSync } from "node:child_process";
import { closeSync, openSync, rmSync, writeSync } from "node:fs";
import path from "node:path";
import { tempDir } from "./node";

export interface SmallDisk {
  dir: string;
  /** write a file until the filesystem has no room left; returns its path */
  fill(): string;
  unmount(): void;
}

export function mountSmallDisk(megabytes: number): SmallDisk {
  const dir = tempDir("pwdless-small-disk");
  const run = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${megabytes}m,mode=0755`, "tmpfs", dir], {
    encoding: "utf8",
  });
  if (run.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(
      `this test mounts a ${megabytes} MB tmpfs to fill a disk for real, and needs root for it: ${run.stderr.trim()}`,
    );
  }
  return {
    dir,
    fill() {
      const file = path.join(dir, "filler");
      const fd = openSync(file, "w");
      const chunk = Buffer.alloc(64 * 1024, 1);
      try {
        for (;;) writeSync(fd, chunk);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error;
        // the last partial pages too
        for (let size = 32 * 1024; size >= 512; size /= 2) {
          try {
            for (;;) writeSync(fd, chunk, 0, size);
          } catch {
            // this size no longer fits: try a smaller one
          }
        }
      } finally {
        closeSync(fd);
      }
      return file;
    },
    unmount() {
      spawnSync("umount", ["-l", dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
