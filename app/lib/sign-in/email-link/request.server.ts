/** Asking for a sign-in email (link and code): the limits, the send, and the one answer for every address. */
import type { SessionStorage } from "@remix-run/node";
import { json, redirect } from "@remix-run/node";
import type { Logger } from "#app/lib/context.server.ts";
import type { Audit } from "#app/lib/abuse/audit.server.ts";
import type { EmailSendLimiter, SlidingWindowLimiter, Verdict } from "#app/lib/abuse/rate-limit.server.ts";
import { apiError } from "#app/lib/http.server.ts";
import { clientKey } from "#app/lib/abuse/client-key.server.ts";
import { mailboxOf } from "#app/lib/validation.server.ts";
import { localeOf } from "#app/lib/i18n/locales.ts";
import type { Said } from "#app/lib/i18n/intl.ts";
import type { EmailLinkStrategy } from "./strategy.server";

export type RequestedBy = "page" | "api";

/** 429 with Retry-After: a form error for people, JSON for API clients. Says nothing about accounts. */
export function tooManyRequests(by: RequestedBy, verdict: Extract<Verdict, { ok: false }>, email = "") {
  const minutes = Math.ceil(verdict.retryAfterSeconds / 60);
  const message = `Too many sign-in requests. Please wait ${minutes} minute${minutes === 1 ? "" : "s"} and try again.`;
  const headers = { "Retry-After": String(verdict.retryAfterSeconds) };
  if (by === "api") return apiError(429, "rate_limited", message, headers);
  const error: Said = { id: "login.error.rateLimited", values: { minutes } };
  return json({ error, email }, { status: 429, headers: { ...headers, "Cache-Control": "no-store" } });
}

/** Every POST /login counts against the client's IP, valid or not. */
export function limitLinkRequests(
  { limits, audit }: { limits: { requestsPerIp: SlidingWindowLimiter }; audit: Audit },
  by: RequestedBy,
  ip: string,
): Response | null {
  const verdict = limits.requestsPerIp.hit(clientKey(ip));
  if (verdict.ok) return null;
  audit.record("rate-limited", { ip, reason: "link-requests-per-ip" });
  return tooManyRequests(by, verdict);
}

export interface RequestLinkDeps {
  limits: { emails: EmailSendLimiter };
  audit: Audit;
  links: EmailLinkStrategy;
  linkCookie: SessionStorage;
  log: Logger;
  /** "outbox" in local mode without SMTP, for the audit line */
  via: "outbox" | "smtp";
}

/**
 * Mail a link and its code to a validated address and bind them to this browser's link cookie;
 * the answer (a redirect to "check your email") is the same for every address.
 */
export async function requestLink(
  deps: RequestLinkDeps,
  request: Request,
  by: RequestedBy,
  ip: string,
  email: string,
  redirectTo: string,
): Promise<Response> {
  // `ada+x@` and `ada@` are one mailbox for the budget; the mail still goes to the address typed
  const mailbox = deps.audit.hashEmail(mailboxOf(email));
  let reserved: Awaited<ReturnType<typeof deps.limits.emails.take>>;
  try {
    reserved = await deps.limits.emails.take(mailbox, deps.audit.keyedHash(`client:${clientKey(ip)}`));
  } catch (error) {
    // by name: the app bundle has its own copy of the cluster's classes
    if (!(error instanceof Error) || error.name !== "ClusterUnavailableError") throw error;
    deps.log.warn("could not count a link email: the shared store is unreachable", { error: error.message });
    return cannotSend(by, email, "unavailable");
  }
  if (!reserved.ok) {
    deps.audit.record("rate-limited", { email, ip, reason: "emails-per-address" });
    return tooManyRequests(by, reserved, email);
  }
  let setCookie: string;
  try {
    ({ setCookie } = await deps.links.sendLink(deps.linkCookie, request.headers.get("Cookie"), {
      email,
      redirectTo,
      locale: localeOf(request),
    }));
  } catch (error) {
    deps.log.error("could not send a sign-in link", { error: error instanceof Error ? error.message : String(error) });
    // the mail did not go out: it does not count against the address
    await reserved.release().catch(() => undefined);
    return cannotSend(by, email);
  }
  deps.audit.record("link-sent", { email, ip, via: deps.via });
  return redirect("/login/sent", { headers: { "Set-Cookie": setCookie } });
}

function cannotSend(by: RequestedBy, email: string, why: "unavailable" | "server_error" = "server_error"): Response {
  if (by === "api")
    return apiError(503, why, "The email could not be sent just now; try again in a minute.", {
      "Retry-After": "60",
    });
  const error: Said = { id: "login.error.cannotSend" };
  return json({ error, email }, { status: 503, headers: { "Retry-After": "60" } });
}
