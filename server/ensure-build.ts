/**
 * `npm start` builds the app only when the build is missing or older than its sources, so a
 * second `PORT=… npm start` does not rebuild (and briefly remove) the assets the first one serves.
 * Two starts at once: one builds, the other waits for it (a lock directory), then both serve.
 * Node runs this file as it is (type stripping), so it must stay free of TypeScript-only syntax.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import path from "node:path";

const SOURCES = ["app", "public", "server", "cluster", "vite.config.ts", "package.json", "tsconfig.json"];
/** the Remix app and the server that runs it (server/build-server.ts) */
const BUILT = [path.resolve("build/server/index.js"), path.resolve("build/node/index.js")];
const LOCK = path.resolve(".data/build.lock");
const STALE_LOCK_MS = 5 * 60_000;

function newest(entry: string): number {
  const stat = statSync(entry, { throwIfNoEntry: false });
  if (!stat) return 0;
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(0, ...readdirSync(entry).map((name) => newest(path.join(entry, name))));
}

const upToDate = () =>
  Math.min(...BUILT.map((file) => statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? 0)) >=
  Math.max(...SOURCES.map(newest));

function takeLock(): boolean {
  mkdirSync(path.dirname(LOCK), { recursive: true });
  try {
    mkdirSync(LOCK);
    return true;
  } catch {
    const age = Date.now() - (statSync(LOCK, { throwIfNoEntry: false })?.mtimeMs ?? 0);
    if (age > STALE_LOCK_MS) rmSync(LOCK, { recursive: true, force: true });
    return false;
  }
}

async function main() {
  const deadline = Date.now() + STALE_LOCK_MS;
  while (!upToDate()) {
    if (takeLock()) {
      try {
        if (upToDate()) break;
        console.log("building the app (npm run build)…");
        const result = spawnSync("npm", ["run", "build", "--silent"], { stdio: "inherit" });
        if (result.status !== 0) process.exit(result.status ?? 1);
      } finally {
        rmSync(LOCK, { recursive: true, force: true });
      }
      break;
    }
    if (Date.now() > deadline) throw new Error("gave up waiting for another build to finish");
    await new Promise((r) => setTimeout(r, 250));
  }
}

main().catch((error: Error) => {
  console.error(error.message);
  process.exit(1);
});
