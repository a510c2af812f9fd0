/**
 * `GET /auth/forward` for reverse proxies (nginx `auth_request`, Traefik `forwardAuth`, Caddy
 * `forward_auth`), answered straight from Express before the page machinery: it runs on every
 * request to every protected app, so it reads one cookie and two in-memory rows, and writes
 * nothing but the hourly "last used" of a session. The app decides (app/lib/auth/forward.server.ts);
 * this file reads the proxy's headers, trusted only from TRUST_PROXY addresses.
 */
import type { Request, RequestHandler } from "express";
import type { ApiAnswers } from "#app/lib/session/api-answers.server.ts";
import { headersOf } from "./fast-api";
import type { Logger } from "./log";

const HOST = /^(?:[a-z0-9](?:[a-z0-9.-]{0,252})|\[[0-9a-f:.]{2,45}\])(?::\d{1,5})?$/i;

/** The first value of a header a chain of proxies may have appended to (`a, b`). */
function first(req: Request, name: string): string | undefined {
  const value = req.get(name);
  return value === undefined ? undefined : value.split(",")[0]!.trim();
}

/**
 * The URL the person asked the proxy for: `X-Original-URL` (nginx, as the README's snippet sets
 * it), else `X-Forwarded-Proto` + `X-Forwarded-Host` + `X-Forwarded-Uri` (Traefik, Caddy).
 */
export function originalUrlOf(req: Request): string | undefined {
  const original = req.get("X-Original-URL");
  if (original) return /^https?:\/\//i.test(original) ? original : undefined;
  const proto = first(req, "X-Forwarded-Proto")?.toLowerCase();
  const host = first(req, "X-Forwarded-Host");
  const uri = req.get("X-Forwarded-Uri") ?? "/";
  if ((proto !== "http" && proto !== "https") || !host || !HOST.test(host) || !uri.startsWith("/")) return undefined;
  return `${proto}://${host}${uri}`;
}

export function forwardAuthHandler(api: Pick<ApiAnswers, "forward">, log: Logger): RequestHandler {
  // an operator's misconfiguration is logged once per peer or host, not once per request
  const warned = new Set<string>();
  const warnOnce = (key: string, message: string, fields: Record<string, unknown>) => {
    if (warned.has(key) || warned.size > 1000) return;
    warned.add(key);
    log.warn(message, { event: "forward-auth", ...fields });
  };
  return async (req, res, next) => {
    try {
      const redirect = req.query.redirect === "1" || req.query.redirect === "true";
      let originalUrl: string | undefined;
      if (redirect) {
        const peer = req.socket.remoteAddress ?? "";
        const trusted = (req.app.get("trust proxy fn") as (addr: string, i: number) => boolean)(peer, 0);
        const claimed = originalUrlOf(req);
        if (trusted) originalUrl = claimed;
        else if (claimed) {
          warnOnce(`peer:${peer}`, "forward auth: ignored the original URL from a proxy not in TRUST_PROXY", {
            peer,
            hint: "set TRUST_PROXY to the proxy's address, or people land on /account after signing in",
          });
        }
      }
      const answer = await api.forward(headersOf(req), { originalUrl, redirect });
      if (answer.refusedHost) {
        warnOnce(`host:${answer.refusedHost}`, "forward auth: the original URL's host is not in FORWARD_AUTH_HOSTS", {
          host: answer.refusedHost,
          hint: "add it to FORWARD_AUTH_HOSTS, or people land on /account after signing in",
        });
      }
      res.status(answer.status).set(answer.headers).end();
    } catch (error) {
      next(error);
    }
  };
}
