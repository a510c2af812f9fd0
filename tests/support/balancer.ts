// A load balancer in front of a test cluster, as a deployment has one: APP_URL is the balancer's
// address for every node, and the test decides which node answers (all traffic, or one request).
import { createServer, request, type IncomingMessage, type Server } from "node:http";
import type { NodeProcess } from "./node";
import type { Site } from "./oidc";
import { freePort } from "./ports";

/** this request to the node with this port, whatever the current route */
const FORCE_HEADER = "x-test-backend-port";

export class Balancer implements Site {
  private target: NodeProcess | undefined;
  /** requests forwarded, by node port: proof of where each step went */
  readonly served = new Map<number, number>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(port?: number): Promise<Balancer> {
    const chosen = port ?? (await freePort());
    let balancer: Balancer | undefined = undefined;
    const server = createServer((req, res) => balancer!.forward(req, res));
    balancer = new Balancer(server, chosen);
    await new Promise<void>((resolve) => server.listen(chosen, "127.0.0.1", () => resolve()));
    return balancer;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Send everything to this node from now on. */
  route(node: NodeProcess): this {
    this.target = node;
    return this;
  }

  /** The site as seen through the balancer, with every request going to this node. */
  via(node: NodeProcess): Site {
    return {
      url: this.url,
      fetch: (pathname, init = {}) => {
        const headers = new Headers(init.headers);
        headers.set(FORCE_HEADER, String(node.port));
        return this.fetch(pathname, { ...init, headers });
      },
    };
  }

  fetch(pathname: string, init: RequestInit = {}): Promise<Response> {
    return fetch(new URL(pathname, this.url), { redirect: "manual", ...init });
  }

  private forward(req: IncomingMessage, res: import("node:http").ServerResponse): void {
    const forced = Number(req.headers[FORCE_HEADER]);
    const port = forced || this.target?.port;
    if (!port) {
      res.writeHead(502).end("no backend chosen");
      return;
    }
    const headers = { ...req.headers };
    delete headers[FORCE_HEADER];
    this.served.set(port, (this.served.get(port) ?? 0) + 1);
    // the Host header stays the balancer's (APP_URL's), as a reverse proxy that preserves it does
    const upstream = request({ host: "127.0.0.1", port, method: req.method, path: req.url, headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on("error", () => {
      if (!res.headersSent) res.writeHead(502);
      res.end("backend unreachable");
    });
    req.pipe(upstream);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
