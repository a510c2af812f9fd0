/**
 * Real reverse proxies for the forward-auth tests: Debian's nginx and Caddy, each started on a
 * free loopback port with the README's own snippet (examples/forward-auth/*), in its own temp
 * folder, in the foreground; and the tiny app they protect, which says what it was sent.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import path from "node:path";
import { ROOT, tempDir } from "./node";
import { waitFor } from "./wait";

export const NGINX = process.env.NGINX_PATH ?? "/usr/sbin/nginx";
export const CADDY = process.env.CADDY_PATH ?? "/usr/bin/caddy";

/** The addresses the README's snippets name, and what a test puts in their place. */
export interface SnippetAddresses {
  /** where the proxy listens (nginx `listen`, Caddy's site address), e.g. 127.0.0.1:41000 */
  proxy: string;
  /** where the proxy reaches PwdlessGs (the snippets say 127.0.0.1:3000) */
  pwdless: string;
  /** the protected app (the snippets say 127.0.0.1:8080) */
  app: string;
}

/** A snippet of examples/forward-auth as the README shows it. */
export function snippet(name: "nginx.conf" | "Caddyfile" | "traefik.yml"): string {
  return readFileSync(path.join(ROOT, "examples/forward-auth", name), "utf8");
}

/** Replace `from` by `to` in `text`, failing when the snippet no longer says `from` (it changed shape). */
function swap(text: string, from: string, to: string): string {
  if (!text.includes(from)) throw new Error(`the snippet no longer contains ${JSON.stringify(from)}`);
  return text.split(from).join(to);
}

/** The nginx snippet with a test's addresses. */
export function nginxSnippet(at: SnippetAddresses): string {
  let text = snippet("nginx.conf");
  text = swap(text, "listen 80;", `listen ${at.proxy};`);
  text = swap(text, "127.0.0.1:3000", at.pwdless);
  text = swap(text, "127.0.0.1:8080", at.app);
  return text;
}

/** The Caddyfile snippet with a test's addresses, after global options that keep Caddy to itself. */
export function caddySnippet(at: SnippetAddresses): string {
  let text = snippet("Caddyfile");
  text = swap(text, "app.example.com {", `http://${at.proxy} {`);
  text = swap(text, "127.0.0.1:3000", at.pwdless);
  text = swap(text, "127.0.0.1:8080", at.app);
  // no admin endpoint (its fixed port would clash between parallel runs), no certificates
  return `{\n\tadmin off\n\tauto_https off\n}\n\n${text}`;
}

/** A real proxy process in the foreground, stopped (and its folder removed) by stop(). */
export class ProxyProcess {
  readonly output: string[] = [];
  private readonly exited: Promise<number | null>;
  exitCode: number | null | undefined = undefined;

  constructor(
    readonly proc: ChildProcess,
    readonly port: number,
    readonly dir: string,
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

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    if (this.exitCode === undefined) this.proc.kill("SIGTERM");
    await Promise.race([this.exited, new Promise((r) => setTimeout(r, 5_000))]);
    if (this.exitCode === undefined) this.proc.kill("SIGKILL");
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function started(proxy: ProxyProcess, what: string): Promise<ProxyProcess> {
  try {
    const up = await waitFor(
      `${what} on port ${proxy.port}`,
      async () => {
        if (proxy.exitCode !== undefined) return "exited";
        await fetch(`${proxy.url}/`, { redirect: "manual" });
        return "up";
      },
      20_000,
      100,
    );
    if (up === "exited") throw new Error(`${what} exited with ${proxy.exitCode}:\n${proxy.output.join("\n")}`);
  } catch (error) {
    await proxy.stop();
    throw error;
  }
  return proxy;
}

/**
 * Debian's nginx on `port` with `serverBlock` (the README's snippet), as an unprivileged user would run it:
 * `-p <tmpdir> -c <generated conf>`, in the foreground, logging to stderr.
 */
export async function startNginx(port: number, serverBlock: string): Promise<ProxyProcess> {
  const dir = tempDir("pwdless-nginx");
  chmodSync(dir, 0o755);
  const temp = (name: string) => {
    const folder = path.join(dir, name);
    mkdirSync(folder, { mode: 0o777 });
    chmodSync(folder, 0o777); // nginx's workers run as nobody when the test runs as root
    return folder;
  };
  const conf = path.join(dir, "nginx.conf");
  writeFileSync(
    conf,
    [
      "worker_processes 1;",
      "events { worker_connections 256; }",
      "http {",
      "    access_log off;",
      `    client_body_temp_path ${temp("body")};`,
      `    proxy_temp_path ${temp("proxy")};`,
      `    fastcgi_temp_path ${temp("fastcgi")};`,
      `    uwsgi_temp_path ${temp("uwsgi")};`,
      `    scgi_temp_path ${temp("scgi")};`,
      serverBlock,
      "}",
      "",
    ].join("\n"),
  );
  const proc = spawn(
    NGINX,
    ["-p", dir, "-c", conf, "-g", `daemon off; pid ${path.join(dir, "nginx.pid")}; error_log stderr;`],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  return started(new ProxyProcess(proc, port, dir), "nginx");
}

/** Debian's Caddy with `caddyfile` (the README's snippet behind global options), in the foreground. */
export async function startCaddy(port: number, caddyfile: string): Promise<ProxyProcess> {
  const dir = tempDir("pwdless-caddy");
  const file = path.join(dir, "Caddyfile");
  writeFileSync(file, caddyfile);
  const proc = spawn(CADDY, ["run", "--config", file, "--adapter", "caddyfile"], {
    // Caddy keeps its state under XDG folders and HOME: this run's own
    env: { ...process.env, HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return started(new ProxyProcess(proc, port, dir), "caddy");
}

export interface SeenRequest {
  method: string;
  url: string;
  user: string | undefined;
  email: string | undefined;
}

/** The protected app: answers every request with what it saw, and remembers it. */
export class UpstreamApp {
  readonly seen: SeenRequest[] = [];
  private server: Server | undefined;
  port = 0;

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const seen = {
        method: req.method ?? "",
        url: req.url ?? "",
        user: req.headers["x-auth-request-user"] as string | undefined,
        email: req.headers["x-auth-request-email"] as string | undefined,
      };
      this.seen.push(seen);
      res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
      res.end(
        `<!doctype html><title>Protected app</title><h1>Protected app</h1><p id="who">${(seen.email ?? "").replace(/[<>&"]/g, "")}</p>`,
      );
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    const address = this.server.address();
    this.port = typeof address === "object" && address ? address.port : 0;
    return this;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
