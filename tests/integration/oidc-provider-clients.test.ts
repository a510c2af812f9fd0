// Apps written with independent OpenID libraries sign in through a live node: Python's Authlib
// (code flow with PKCE, from Debian's python3-authlib) and openid-client's device flow (the CLI
// example in examples/openid-client/cli.mjs).
import { spawn, type ChildProcess } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CookieJar } from "../support/cookie-jar";
import { ROOT, startNode, stopAllNodes, type NodeProcess } from "../support/node";
import { approveDevice, clientsFile, follow, signInWithCode, standardClients, visit } from "../support/oidc";
import { TestSmtpServer } from "../support/smtp";
import { waitFor } from "../support/wait";

const PYTHON = process.env.PYTHON_WITH_AUTHLIB ?? "/usr/bin/python3";

/** A child process whose stdout JSON lines the test reads as they come. */
class Program {
  readonly lines: string[] = [];
  readonly errors: string[] = [];
  exitCode: number | null | undefined;

  constructor(readonly proc: ChildProcess) {
    proc.stdout!.on("data", (chunk: Buffer) => this.lines.push(...chunk.toString().split("\n").filter(Boolean)));
    proc.stderr!.on("data", (chunk: Buffer) => this.errors.push(chunk.toString()));
    proc.on("exit", (code) => (this.exitCode = code));
  }

  json<T>(key: string): Promise<T> {
    return waitFor(
      `a line with "${key}" from the program`,
      () => {
        if (this.exitCode !== undefined && this.exitCode !== 0) {
          throw new Error(`exited ${this.exitCode}: ${this.errors.join("")}`);
        }
        for (const line of this.lines) {
          try {
            const value = JSON.parse(line) as Record<string, unknown>;
            if (key in value) return value as T;
          } catch {
            // a line for people
          }
        }
        return undefined;
      },
      60_000,
    );
  }
}

describe("independent OpenID client libraries against a live node", () => {
  let smtp: TestSmtpServer;
  let node: NodeProcess;
  const programs: Program[] = [];

  beforeAll(async () => {
    smtp = await new TestSmtpServer().start();
    node = await startNode({ env: { SMTP_URL: smtp.url, OIDC_PROVIDER_CLIENTS_FILE: clientsFile(standardClients()) } });
  });

  afterAll(async () => {
    for (const program of programs) program.proc.kill("SIGKILL");
    await stopAllNodes();
    await smtp.stop();
  });

  it("Python's Authlib completes the code flow with PKCE: a valid ID token whose sub is /api/me's id", async () => {
    const python = new Program(
      spawn(PYTHON, ["examples/authlib_client.py"], {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH,
          NODE_ENV: "test",
          ISSUER: node.url,
          CLIENT_ID: "web",
          CLIENT_SECRET: "test-client-secret-0123456789abcdef0123",
          REDIRECT_URI: "http://127.0.0.1:9/callback",
        },
        stdio: ["pipe", "pipe", "pipe"],
      }),
    );
    programs.push(python);
    const { authorization_url } = await python.json<{ authorization_url: string }>("authorization_url");
    const start = new URL(authorization_url);
    expect(start.searchParams.get("code_challenge_method")).toBe("S256");
    expect(start.searchParams.get("code_challenge")).toBeTruthy();

    const jar = new CookieJar();
    const first = await visit(node, jar, `${start.pathname}${start.search}`);
    const result = await follow(node, jar, first, { email: "authlib@example.com", smtp });
    expect(result.redirect?.searchParams.get("code")).toBeTruthy();
    python.proc.stdin!.end(`${result.redirect!.href}\n`);

    const learned = await python.json<Record<string, unknown>>("sub");
    const token = (
      (await (await visit(node, jar, "/auth/refresh", { method: "POST" })).json()) as { access_token: string }
    ).access_token;
    const me = (await (await node.fetch("/api/me", { headers: { Authorization: `Bearer ${token}` } })).json()) as {
      id: string;
    };
    expect(learned).toEqual({
      sub: me.id,
      email: "authlib@example.com",
      email_verified: true,
      alg: "RS256",
      userinfo_sub: me.id,
      userinfo_email: "authlib@example.com",
    });
  });

  it("openid-client's device flow (the CLI example) signs a command-line tool in, approved in a browser", async () => {
    const cli = new Program(
      spawn(process.execPath, ["examples/openid-client/cli.mjs"], {
        cwd: ROOT,
        env: { PATH: process.env.PATH, NODE_ENV: "test", ISSUER: node.url, CLIENT_ID: "cli" },
        stdio: ["ignore", "pipe", "pipe"],
      }),
    );
    programs.push(cli);
    const { user_code, verification_uri } = await cli.json<{ user_code: string; verification_uri: string }>(
      "user_code",
    );
    expect(verification_uri).toBe(`${node.url}/device`);
    const jar = new CookieJar();
    await signInWithCode(node, jar, "terminal@example.com", smtp);
    const done = await approveDevice(node, jar, user_code);
    expect(done.stoppedAt?.body).toContain("Your device is signed in");
    const signedIn = await cli.json<Record<string, unknown>>("signed_in");
    expect(signedIn).toMatchObject({ signed_in: true, email: "terminal@example.com", has_refresh_token: true });
    expect(await waitFor("the CLI to exit", () => cli.exitCode !== undefined && cli.exitCode !== null, 10_000)).toBe(
      true,
    );
    expect(cli.exitCode).toBe(0);
  });
});
