import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort } from "./ports";
import { waitFor } from "./wait";

export const ROOT = path.resolve(import.meta.dirname, "../..");

export interface NodeOptions {
  /** extra or overriding environment */
  env?: Record<string, string | undefined>;
  port?: number;
  dataDir?: string;
  /** wait for /healthz (default) or nothing (for processes expected to fail) */
  waitUntil?: "healthy" | "none";
}

/** One real server process (the built server, build/node/index.js, on the built app) on loopback. */
export class NodeProcess {
  readonly output: string[] = [];
  private exited: Promise<number | null>;
  exitCode: number | null | undefined = undefined;

  constructor(
    readonly proc: ChildProcess,
    readonly port: number,
    readonly dataDir: string,
    readonly env: Record<string, string | undefined>,
  ) {
    const collect = (chunk: Buffer) => this.output.push(...chunk.toString("utf8").split("\n").filter(Boolean));
    proc.stdout?.on("data", collect);
    proc.stderr?.on("data", collect);
    this.exited = new Promise((resolve) =>
      proc.on("exit", (code) => {
        this.exitCode = code;
        resolve(code);
      }),
    );
  }

  /** Where to reach the node: 127.0.0.1, or localhost when APP_URL says so (the node sends GETs there). */
  get url(): string {
    const appUrl = this.env.APP_URL;
    if (appUrl && new URL(appUrl).host === `localhost:${this.port}`) return appUrl;
    return `http://127.0.0.1:${this.port}`;
  }

  get log(): string {
    return this.output.join("\n");
  }

  /** Parsed JSON log lines. */
  events(): Record<string, unknown>[] {
    return this.output.flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  }

  fetch(pathname: string, init: RequestInit = {}): Promise<Response> {
    return fetch(new URL(pathname, this.url), { redirect: "manual", ...init });
  }

  async nodeId(): Promise<string> {
    const status = (await (await this.fetch("/cluster.json")).json()) as { nodeId: string };
    return status.nodeId;
  }

  waitForExit(): Promise<number | null> {
    return this.exited;
  }

  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<number | null> {
    if (this.exitCode === undefined) this.proc.kill(signal);
    return this.exited;
  }
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

export function testSecret(): string {
  return randomBytes(32).toString("base64url");
}

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(tmpdir(), `${prefix}-`));
}

const started: NodeProcess[] = [];

/** How a server process is started: what `npm start` runs after its build check (`npm run build` first). */
export function serverCommand(): { command: string; args: string[] } {
  return { command: process.execPath, args: ["build/node/index.js"] };
}

/** Start the server as a real process; by default alone in its own cluster and registry. */
export async function startNode(options: NodeOptions = {}): Promise<NodeProcess> {
  const port = options.port ?? (await freePort());
  const dataDir = options.dataDir ?? tempDir("pwdless-node");
  const env: Record<string, string | undefined> = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    TMPDIR: process.env.TMPDIR,
    NODE_ENV: "test",
    PORT: String(port),
    HOST: "127.0.0.1",
    APP_URL: `http://127.0.0.1:${port}`,
    DATA_DIR: dataDir,
    SECRET_KEY_BASE: testSecret(),
    CLUSTER_NAME: uniqueName("t"),
    CLUSTER_HOST: "127.0.0.1",
    CLUSTER_DISCOVERY: "none",
    ...options.env,
  };
  const { command, args } = serverCommand();
  const proc = spawn(command, args, {
    cwd: ROOT,
    env: Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)) as NodeJS.ProcessEnv,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const node = new NodeProcess(proc, port, dataDir, env);
  started.push(node);
  if (options.waitUntil !== "none") {
    await waitFor(
      `node on port ${port} to answer /healthz`,
      async () => {
        if (node.exitCode !== undefined) throw new Error(`node exited with ${node.exitCode}:\n${node.log}`);
        const res = await fetch(`${node.url}/healthz`);
        return res.ok;
      },
      30_000,
      100,
    );
  }
  return node;
}

/** Stop every process this file started and remove their data dirs. */
export async function stopAllNodes(): Promise<void> {
  const nodes = started.splice(0);
  await Promise.all(nodes.map((n) => n.stop("SIGKILL")));
  for (const n of nodes) rmSync(n.dataDir, { recursive: true, force: true });
}
