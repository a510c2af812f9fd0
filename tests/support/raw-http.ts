/**
 * HTTP requests that fetch() cannot make: any Host header (malformed ones included, sent as
 * written) and a chosen loopback source address (another "client IP" on the same machine).
 */
import { request } from "node:http";

export interface RawRequest {
  method?: string;
  path: string;
  /** sent verbatim, in this order; a Host here replaces the default one */
  headers?: Record<string, string>;
  body?: string;
  /** source address of the connection, e.g. 127.0.0.2 */
  localAddress?: string;
}

/** To a node, or any other server of the test on 127.0.0.1 (a proxy). */
export function rawRequest(node: { port: number }, options: RawRequest): Promise<Response> {
  const headers: Record<string, string> = { Host: `127.0.0.1:${node.port}`, Connection: "close", ...options.headers };
  if (options.body !== undefined) headers["Content-Length"] = String(Buffer.byteLength(options.body));
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port: node.port,
        method: options.method ?? "GET",
        path: options.path,
        localAddress: options.localAddress,
        setHost: false,
        headers,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const out = new Headers();
          for (const [key, value] of Object.entries(res.headers)) {
            if (Array.isArray(value)) for (const v of value) out.append(key, v);
            else if (value !== undefined) out.set(key, value);
          }
          resolve(new Response(Buffer.concat(chunks), { status: res.statusCode ?? 0, headers: out }));
        });
      },
    );
    req.on("error", reject);
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}
