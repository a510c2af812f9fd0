/**
 * The per-request holder of what the session layer sends back (app/lib/auth writes, server/ sends):
 * created on first use for a response, handed to the app (the load context's `sessionHeaders`, the
 * fast API's `out`), and attached by server/ to whatever answer leaves — a Remix page or data
 * request, a thrown redirect, an error page, a fast-path answer, a refusal — never by a route.
 */
import type { Response } from "express";
import type { SessionHeaders } from "#app/lib/context.server.ts";

const cookieName = (setCookie: string) => setCookie.slice(0, setCookie.indexOf("=")).trim();

export class PendingSessionHeaders implements SessionHeaders {
  private readonly cookies = new Map<string, string>();
  private readonly headers = new Map<string, string>();

  cookie(setCookie: string): void {
    this.cookies.set(cookieName(setCookie), setCookie);
  }

  header(name: string, value: string): void {
    this.headers.set(name.toLowerCase(), value);
  }

  /**
   * Add to the response what it does not set itself: a cookie or header the route (or
   * finishSignIn) set on purpose — a new session's cookie, a sign-out's clearing — stays as set.
   * Idempotent, so every way out may call it.
   */
  applyTo(res: Response): void {
    if (res.headersSent) return;
    const existing = res.getHeader("set-cookie");
    const lines = existing === undefined ? [] : Array.isArray(existing) ? existing : [String(existing)];
    const present = new Set(lines.map(cookieName));
    for (const [name, line] of this.cookies) if (!present.has(name)) res.append("Set-Cookie", line);
    for (const [name, value] of this.headers) if (!res.hasHeader(name)) res.setHeader(name, value);
  }
}

/** The response's holder, made on first use (requests that never ask who is signed in make none). */
export function sessionHeadersOf(res: Response): PendingSessionHeaders {
  const locals = res.locals as { sessionHeaders?: PendingSessionHeaders };
  return (locals.sessionHeaders ??= new PendingSessionHeaders());
}

/** Attach the response's pending session headers, if it has any. */
export function sendSessionHeaders(res: Response): void {
  (res.locals as { sessionHeaders?: PendingSessionHeaders }).sessionHeaders?.applyTo(res);
}
