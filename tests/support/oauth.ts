import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload, type KeyLike } from "jose";
import { CookieJar } from "./cookie-jar";
import { browse, form } from "./flows";
import type { NodeProcess } from "./node";

/** POST /auth/:provider as the login page's button does; returns the provider's authorization URL. */
export async function startProviderSignIn(
  node: NodeProcess,
  jar: CookieJar,
  provider: string,
  redirectTo?: string,
): Promise<URL> {
  const res = await browse(node, jar, `/auth/${provider}`, form(redirectTo ? { redirectTo } : {}));
  if (res.status !== 302)
    throw new Error(`POST /auth/${provider} answered ${res.status}: ${(await res.text()).slice(0, 500)}`);
  return new URL(res.headers.get("location")!);
}

export interface DevLogin {
  email?: string;
  verified?: boolean;
  /** press Cancel on the provider's page instead of Continue */
  cancel?: boolean;
}

/**
 * At the development provider (served by the node itself): open the authorization URL, fill in
 * its sign-in page and follow its redirects until it sends the browser back to the app.
 * Returns the callback URL, not yet opened.
 */
export async function answerAtDevProvider(
  node: NodeProcess,
  jar: CookieJar,
  authorization: URL,
  login: DevLogin = {},
): Promise<URL> {
  let res = await browse(node, jar, authorization.href);
  let location = res.headers.get("location");
  if (res.status !== 303 || !location)
    throw new Error(`the provider's authorization endpoint answered ${res.status}: ${await res.text()}`);
  const page = await browse(node, jar, location);
  const html = await page.text();
  if (page.status !== 200) throw new Error(`the provider's sign-in page answered ${page.status}: ${html}`);
  const action = /<form method="post" action="([^"]+)"/.exec(html)?.[1];
  if (!action) throw new Error(`no form on the provider's sign-in page: ${html}`);
  const target = login.cancel ? action.replace(/\/login$/, "/abort") : action;
  const fields: Record<string, string> = { email: login.email ?? "dev@example.com" };
  if (login.verified !== false) fields.verified = "on";
  res = await browse(node, jar, target, form(fields));
  for (let hops = 0; hops < 5; hops++) {
    location = res.headers.get("location");
    if (!location) throw new Error(`the provider stopped with ${res.status}: ${(await res.text()).slice(0, 500)}`);
    const next = new URL(location, node.url);
    if (next.pathname.endsWith("/callback")) return next;
    res = await browse(node, jar, next.href);
  }
  throw new Error("the provider never sent the browser back");
}

/** The whole sign-in through the development provider on one node; returns the callback's answer. */
export async function signInWithDev(
  node: NodeProcess,
  email: string,
  jar = new CookieJar(),
  redirectTo?: string,
): Promise<Response> {
  const authorization = await startProviderSignIn(node, jar, "dev", redirectTo);
  const callback = await answerAtDevProvider(node, jar, authorization, { email });
  return browse(node, jar, callback.pathname + callback.search);
}

/** The loader data of /account: the sign-in methods and sessions it lists. */
export async function accountData(
  node: NodeProcess,
  jar: CookieJar,
): Promise<{ methods: string[]; sessions: { method: string }[] }> {
  const res = await browse(node, jar, "/account?_data=routes%2Faccount");
  if (res.status !== 200) throw new Error(`/account data answered ${res.status}`);
  const data = (await res.json()) as { methods: { id: string; name: string }[]; sessions: { method: string }[] };
  // the methods by their English names (the page says the built-in ones in the person's language)
  return { methods: data.methods.map((m) => m.name), sessions: data.sessions };
}

export const s256 = (verifier: string) => createHash("sha256").update(verifier).digest("base64url");

export type TokenEndpointMode = "answer" | "hang" | "garbage" | "invalid_grant";

/**
 * A small OpenID Provider on loopback whose answers a test decides: discovery, keys, and a token
 * endpoint that answers with an ID token made of `claims`, hangs, or answers garbage. Real HTTP,
 * real signatures: the node under test talks to it as to any issuer.
 */
export class ScriptedIssuer {
  tokenMode: TokenEndpointMode = "answer";
  /** the ID token's claims for the next token request; iss, iat and exp are added unless given */
  claims: JWTPayload = {};
  /** sign with a key the issuer does not publish */
  signWithForeignKey = false;
  readonly tokenRequests: URLSearchParams[] = [];
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private key!: { privateKey: KeyLike; publicKey: KeyLike };
  private foreignKey!: { privateKey: KeyLike; publicKey: KeyLike };
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    this.key = await generateKeyPair("RS256");
    this.foreignKey = await generateKeyPair("RS256");
    this.server = createServer((req, res) => void this.answer(req, res));
    this.server.on("connection", (socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }

  private async answer(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? "/", this.url);
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { "Content-Type": "application/json" }).end(JSON.stringify(body));
    };
    if (url.pathname === "/.well-known/openid-configuration") {
      return send(200, {
        issuer: this.url,
        authorization_endpoint: `${this.url}/authorize`,
        token_endpoint: `${this.url}/token`,
        jwks_uri: `${this.url}/jwks`,
        response_types_supported: ["code"],
        subject_types_supported: ["public"],
        id_token_signing_alg_values_supported: ["RS256"],
        token_endpoint_auth_methods_supported: ["client_secret_post"],
        code_challenge_methods_supported: ["S256"],
      });
    }
    if (url.pathname === "/jwks") {
      return send(200, { keys: [{ ...(await exportJWK(this.key.publicKey)), kid: "k1", alg: "RS256", use: "sig" }] });
    }
    if (url.pathname === "/token" && req.method === "POST") {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      this.tokenRequests.push(new URLSearchParams(Buffer.concat(chunks).toString("utf8")));
      if (this.tokenMode === "hang") return; // accept, never answer
      if (this.tokenMode === "garbage")
        return res.writeHead(200, { "Content-Type": "text/html" }).end("<html>Service Unavailable");
      if (this.tokenMode === "invalid_grant") return send(400, { error: "invalid_grant" });
      const now = Math.floor(Date.now() / 1000);
      const idToken = await new SignJWT({ iss: this.url, iat: now, exp: now + 300, ...this.claims })
        .setProtectedHeader({ alg: "RS256", kid: "k1" })
        .sign(this.signWithForeignKey ? this.foreignKey.privateKey : this.key.privateKey);
      return send(200, {
        access_token: "scripted-access-token",
        token_type: "Bearer",
        expires_in: 300,
        id_token: idToken,
      });
    }
    send(404, { error: "not_found" });
  }
}

/** A loopback listener whose behaviour a test switches: refuse (not listening), hang, or answer garbage. */
export class MisbehavingServer {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(readonly port: number) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** listen and answer every request with `answer`, or never answer when it is undefined */
  async listen(answer?: (res: ServerResponse) => void): Promise<void> {
    await this.close();
    this.server = createServer((_req, res) => answer?.(res));
    this.server.on("connection", (socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, "127.0.0.1", resolve));
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    if (this.server) await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.server = undefined;
  }
}
