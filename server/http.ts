import { createRequestHandler, writeReadableStreamToWritable, type ServerBuild } from "@remix-run/node";
import express, { type ErrorRequestHandler, type Request, type RequestHandler, type Response } from "express";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { ClusterUnavailableError } from "#cluster";
import { staticFiles } from "./static-files";
import type { AppContext } from "../app/lib/context.server";
import type { Config } from "./config";
import type { Logger } from "./log";
import { isLoopbackHost } from "./loopback";
import { sendSessionHeaders, sessionHeadersOf } from "./session-headers";

const wantsJson = (req: Request) =>
  req.path.startsWith("/api/") ||
  req.path === "/auth/refresh" ||
  (req.get("Accept") ?? "").includes("application/json");

/** A short answer in the client's language: JSON for API clients, a small page for people. */
function refuse(req: Request, res: Response, status: number, error: string, message: string) {
  res.status(status).set("Cache-Control", "no-store");
  // a cookie the session layer re-sealed before the failure still reaches the browser
  sendSessionHeaders(res);
  if (wantsJson(req)) {
    res.json({ error, message });
  } else {
    const safe = message.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
    res
      .type("html")
      .send(
        `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${status}</title><link rel="stylesheet" href="/refused.css"></head><body><h1>${safe}</h1><p><a href="/">Home</a> · <a href="/login">Sign in</a></p></body></html>`,
      );
  }
}

/**
 * Local mode: a page opened as 127.0.0.1 while APP_URL says localhost (or the reverse) is sent to
 * APP_URL's host, so the link cookie and the link in the email are on the same host.
 */
function canonicalLoopbackHost(config: Config): RequestHandler {
  const loopback = new Set(["localhost", "127.0.0.1", "[::1]", "::1"]);
  return (req, res, next) => {
    if (req.method !== "GET" && req.method !== "HEAD") return next();
    const host = req.get("host") ?? "";
    const hostname = host.replace(/:\d+$/, "");
    if (host === config.appUrl.host || !loopback.has(hostname) || !loopback.has(config.appUrl.hostname)) return next();
    res.redirect(302, `${config.appUrl.origin}${req.originalUrl}`);
  };
}

const HOST_HEADER = /^(?:[a-z0-9](?:[a-z0-9.-]{0,252})|\[[0-9a-f:.]{2,45}\])(?::\d{1,5})?$/i;

/**
 * A malformed Host is a 400 (it would make the request's URL throw); in local mode only this
 * machine's names are answered, so a DNS-rebinding page cannot read the outbox or post as "same site".
 */
function checkHost(config: Config, log: Logger): RequestHandler {
  return (req, res, next) => {
    const host = req.headers.host ?? "";
    if (!HOST_HEADER.test(host) || !URL.canParse(`http://${host}/`)) {
      log.warn("refused a malformed Host header", { event: "refused", reason: "bad-host", path: req.path, ip: req.ip });
      return refuse(req, res, 400, "invalid_request", "The Host header of this request is malformed.");
    }
    const hostname = host.replace(/:\d+$/, "").toLowerCase();
    if (config.mode === "local" && hostname !== config.appUrl.hostname && !isLoopbackHost(hostname)) {
      log.warn("refused a request for another host", {
        event: "refused",
        reason: "foreign-host",
        path: req.path,
        ip: req.ip,
      });
      return refuse(req, res, 421, "misdirected_request", `This server answers only for ${config.appUrl.host}.`);
    }
    next();
  };
}

/**
 * Cross-site form posts are refused: a browser says where a request comes from. `exempt` names the
 * back-channel endpoints (the OpenID provider's token endpoint…), which apps' servers and CLIs call
 * with their own credentials, and browser apps from their own origin under CORS.
 */
function sameOriginPosts(
  config: Config,
  log: Logger,
  exempt?: (method: string, path: string) => boolean,
): RequestHandler {
  const allowed = new Set(config.allowedOrigins);
  return (req, res, next) => {
    if (["GET", "HEAD", "OPTIONS"].includes(req.method)) return next();
    if (exempt?.(req.method, req.path)) return next();
    // Fetch metadata first: browsers send it on every request, and it stays right on pages whose
    // Referrer-Policy makes native form posts say `Origin: null`. Origin is the fallback.
    const site = req.get("Sec-Fetch-Site");
    const origin = req.get("Origin");
    const crossSite =
      site !== undefined ? site !== "same-origin" && site !== "none" : origin !== undefined && !allowed.has(origin);
    if (!crossSite) return next();
    log.warn("refused a cross-site request", {
      event: "refused",
      reason: "cross-site",
      path: req.path,
      origin,
      site,
      ip: req.ip,
    });
    refuse(req, res, 403, "forbidden", "This request came from another site and was refused.");
  };
}

/**
 * Headers on every answer. The Content-Security-Policy allows only this site's own scripts and the
 * inline ones Remix renders with this request's nonce; no page may be framed.
 */
function securityHeaders(config: Config, dev: boolean): RequestHandler {
  // APP_LOGO_URL on another origin: that one origin may serve images, nothing else changes
  const logoOrigin = config.brand.logoUrl?.startsWith("/")
    ? undefined
    : config.brand.logoUrl && new URL(config.brand.logoUrl).origin;
  const imgSrc = ["img-src 'self' data:", logoOrigin].filter(Boolean).join(" ");
  return (_req, res, next) => {
    const nonce = randomBytes(16).toString("base64");
    res.locals.cspNonce = nonce;
    res.set({
      "X-Content-Type-Options": "nosniff",
      "X-Frame-Options": "DENY",
      "Referrer-Policy": "same-origin",
      "Cross-Origin-Opener-Policy": "same-origin",
    });
    // Vite's dev client injects inline scripts and a websocket: the policy is for built apps
    if (!dev) {
      res.set(
        "Content-Security-Policy",
        [
          "default-src 'self'",
          `script-src 'self' 'nonce-${nonce}'`,
          "style-src 'self'",
          imgSrc,
          "connect-src 'self'",
          "object-src 'none'",
          "base-uri 'none'",
          "frame-ancestors 'none'",
        ].join("; "),
      );
    }
    if (config.mode === "production") res.set("Strict-Transport-Security", "max-age=31536000; includeSubDomains");
    next();
  };
}

export interface HttpDeps {
  config: Config;
  log: Logger;
  /** the built app, or (in `npm run dev`) a loader Vite answers afresh after each change */
  build: ServerBuild | (() => Promise<ServerBuild>);
  /** Vite's dev middleware, in `npm run dev` only */
  devMiddleware?: RequestHandler;
  /** the development OpenID provider (local mode): it reads its own bodies, so it goes before ours */
  devOidc?: { mountPath: string; router: RequestHandler };
  /**
   * the OpenID provider (app/lib/provider): it answers its own paths (discovery, /oidc/…, /device),
   * reads its own bodies (56 KiB at most) and waits for its writes to be durable before answering
   */
  openIdProvider?: {
    handle(req: Request, res: Response, next: (error?: unknown) => void): void;
    isBackChannel(method: string, path: string): boolean;
  };
  /** the JSON API's hot paths answered without Remix (server/fast-api.ts); not in `npm run dev` */
  fastApi?: RequestHandler;
  /** `/auth/forward` for reverse proxies (server/forward-auth.ts), any method, before the page machinery */
  forwardAuth?: RequestHandler;
  /** request timing for every answer, and the /metrics endpoint (server/metrics.ts) */
  metrics?: { middleware: RequestHandler; handler: RequestHandler };
  appContext: AppContext;
  isReady: () => boolean;
  /** more for /readyz to say (Redis mode: its topology, without addresses: /readyz is open) */
  readyDetail?: () => Record<string, unknown>;
  /** "acknowledged means on disk": a count of local writes, and the wait for them to be durable */
  durability?: Durability;
}

export function createApp({
  config,
  log,
  build,
  devMiddleware,
  devOidc,
  openIdProvider,
  fastApi,
  forwardAuth,
  metrics,
  appContext,
  isReady,
  readyDetail,
  durability,
}: HttpDeps): express.Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("trust proxy", config.trustProxy);
  app.use(securityHeaders(config, Boolean(devMiddleware)));
  app.use(checkHost(config, log));
  if (metrics) app.use(metrics.middleware);

  app.get("/healthz", (_req, res) => {
    res.set("Cache-Control", "no-store").json({ status: "ok" });
  });
  app.get("/readyz", (_req, res) => {
    const ready = isReady();
    res
      .set("Cache-Control", "no-store")
      .status(ready ? 200 : 503)
      .json({ ready, ...readyDetail?.() });
  });
  if (metrics) app.get("/metrics", metrics.handler);
  // nginx, Traefik and Caddy ask with GET; a proxy that passes the guarded request's own method
  // (a POST from the app's pages) is answered alike, before the cross-site and body checks
  if (forwardAuth) app.all("/auth/forward", forwardAuth);
  // the example routes of the README (app/routes/examples.*, api.examples.*) are for developers
  if (config.mode === "production") {
    app.use(["/examples", "/api/examples"], (req, res) =>
      refuse(req, res, 404, "not_found", "There is nothing at this address."),
    );
  }

  if (devMiddleware) {
    app.use(devMiddleware);
  } else {
    app.use(staticFiles(path.resolve("build/client")));
  }

  if (config.mode === "local") app.use(canonicalLoopbackHost(config));
  app.use(sameOriginPosts(config, log, openIdProvider?.isBackChannel));
  if (openIdProvider) {
    // a body past our limit is refused by its length before the provider reads it (413 below)
    app.use((req, res, next) => {
      if (Number(req.get("Content-Length") ?? 0) > config.bodyLimitBytes)
        return next(Object.assign(new Error("too large"), { status: 413 }));
      openIdProvider.handle(req, res, next);
    });
  }
  if (devOidc) app.use(devOidc.mountPath, devOidc.router);
  // Bodies are read here, whole and bounded (413 past the limit), before Remix sees them.
  app.use(express.raw({ type: () => true, limit: config.bodyLimitBytes }));
  if (fastApi) app.use(fastApi);

  const handleRequest = createRequestHandler(build, devMiddleware ? "development" : "production");
  app.all("*", async (req, res, next) => {
    try {
      const writesBefore = durability?.writes();
      const response = await handleRequest(toFetchRequest(req, res), {
        app: appContext,
        cspNonce: res.locals.cspNonce as string,
        clientIp: req.ip ?? req.socket.remoteAddress ?? "unknown",
        // what the session layer sends back: attached below to whatever Remix answers
        sessionHeaders: sessionHeadersOf(res),
      });
      if (durability && durability.writes() !== writesBefore && !(await madeDurable(durability, req, res, log))) {
        await response.body?.cancel();
        return;
      }
      await sendRemixResponse(res, response);
    } catch (error) {
      if (error instanceof ClusterUnavailableError) {
        log.warn("refused a request: its changes could not be stored", {
          event: "refused",
          reason: `unavailable-${error.reason}`,
          path: req.path,
          method: req.method,
          error: error.message,
        });
        res.set("Retry-After", "5");
        return refuse(
          req,
          res,
          503,
          "unavailable",
          "The sign-in service cannot store changes right now. Please try again in a moment.",
        );
      }
      next(error);
    }
  });

  const onError: ErrorRequestHandler = (error, req, res, _next) => {
    const status = typeof error?.status === "number" ? error.status : 500;
    if (status === 413) {
      log.warn("refused an oversized body", { event: "refused", reason: "body-too-large", path: req.path, ip: req.ip });
      return refuse(
        req,
        res,
        413,
        "invalid_request",
        `The request body is larger than ${config.bodyLimitBytes / 1024} KiB.`,
      );
    }
    if (status >= 400 && status < 500) {
      return refuse(req, res, status, "invalid_request", "The request could not be read.");
    }
    log.error("unexpected error while handling a request", { path: req.path, method: req.method, error });
    if (res.headersSent) return res.end();
    refuse(req, res, 500, "server_error", "Something went wrong on our side. Please try again.");
  };
  app.use(onError);
  return app;
}

export interface Durability {
  /** grows with every write this node makes (the store's local-write counter) */
  writes(): number;
  /** resolves once this node's writes so far are durable; rejects with ClusterUnavailableError */
  durable(): Promise<void>;
}

/**
 * Wait until what this request wrote is durable before telling anyone it happened. Only requests
 * during which this node wrote wait (reads stay served while the disk refuses writes); another
 * request's write in the same moment makes a read wait too, which is cheap while the disk works.
 * On failure: a 503 in the client's language and one log line; false means "answered already".
 */
export async function madeDurable(durability: Durability, req: Request, res: Response, log: Logger): Promise<boolean> {
  try {
    await durability.durable();
    return true;
  } catch (error) {
    if (!(error instanceof ClusterUnavailableError)) throw error;
    log.error("a change could not be made durable; answered 503", {
      event: "unavailable",
      reason: error.reason,
      path: req.path,
      method: req.method,
      error: error.message,
    });
    res.set("Retry-After", "30");
    refuse(
      req,
      res,
      503,
      "unavailable",
      error.reason === "disk"
        ? "This server cannot save changes to its disk right now, so it could not confirm yours. Please try again in a moment."
        : "The sign-in service cannot store changes right now, so it could not confirm yours. Please try again in a moment.",
    );
    return false;
  }
}

/** The Fetch request Remix wants, with the body Express already read and bounded. */
function toFetchRequest(req: Request, res: Response): globalThis.Request {
  const url = new URL(req.originalUrl, `${req.protocol}://${req.get("host") ?? "localhost"}`);
  const controller = new AbortController();
  res.on("close", () => {
    if (!res.writableFinished) controller.abort();
  });
  const headers = toFetchHeaders(req.headers);
  // sameOriginPosts has judged where the request came from, by APP_URL; Remix's own check compares
  // Origin with Host and would fail (a 500) behind proxies and for `Origin: null` on no-referrer pages
  headers.delete("origin");
  headers.delete("x-forwarded-host");
  const init: RequestInit = { method: req.method, headers, signal: controller.signal };
  if (req.method !== "GET" && req.method !== "HEAD" && Buffer.isBuffer(req.body)) init.body = new Uint8Array(req.body);
  return new globalThis.Request(url, init);
}

function toFetchHeaders(incoming: Request["headers"]): Headers {
  const headers = new Headers();
  for (const [key, value] of Object.entries(incoming)) {
    if (Array.isArray(value)) for (const v of value) headers.append(key, v);
    else if (value !== undefined) headers.set(key, value);
  }
  return headers;
}

async function sendRemixResponse(res: Response, response: globalThis.Response): Promise<void> {
  res.statusMessage = response.statusText;
  res.status(response.status);
  // pages and API answers may carry credentials or personal data: not cached unless a route says so
  res.setHeader("Cache-Control", "no-store");
  for (const [key, value] of response.headers.entries()) {
    // the app's own headers override the defaults set earlier (e.g. Referrer-Policy on link pages)
    if (key === "set-cookie") res.append(key, value);
    else res.setHeader(key, value);
  }
  // a page, a data request, a redirect or an error page alike: the route's own cookies win
  sendSessionHeaders(res);
  if (response.body) await writeReadableStreamToWritable(response.body, res);
  else res.end();
}
