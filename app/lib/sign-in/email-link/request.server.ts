import { json } from "@remix-run/node";
import { apiError } from "#app/lib/http.server.ts";
import type { Services } from "#app/lib/services.server.ts";
import type { Verdict } from "#app/lib/abuse/rate-limit.server.ts";

export type RequestedBy = "page" | "api";

/** 429 with Retry-After: a form error for people, JSON for API clients. Says nothing about accounts. */
export function tooManyRequests(by: RequestedBy, verdict: Extract<Verdict, { ok: false }>, email = "") {
  const minutes = Math.ceil(verdict.retryAfterSeconds / 60);
  const message = `Too many sign-in requests. Please wait ${minutes} minute${minutes === 1 ? "" : "s"} and try again.`;
  const headers = { "Retry-After": String(verdict.retryAfterSeconds) };
  if (by === "api") return apiError(429, "rate_limited", message, headers);
  return json({ error: message, email }, { status: 429, headers: { ...headers, "Cache-Control": "no-store" } });
}

/** Every POST /login counts against the client's IP, valid or not. */
export function limitLinkRequests(services: Services, by: RequestedBy, ip: string): Response | null {
  const verdict = services.limits.requestsPerIp.hit(ip);
  if (verdict.ok) return null;
  services.audit.record("rate-limited", { ip, reason: "link-requests-per-ip" });
  return tooManyRequests(by, verdict);
}

/**
 * Hand a validated address to the email-link strategy. It seals the link into this browser's
 * link cookie and redirects to "check your email"; the answer is the same for every address.
 */
export async function requestLink(
  services: Services,
  request: Request,
  by: RequestedBy,
  ip: string,
  email: string,
  redirectTo: string,
): Promise<Response> {
  const { config, log } = services.ctx;
  const addressHash = services.audit.hashEmail(email);
  const verdict = services.limits.emails.check(addressHash);
  if (!verdict.ok) {
    services.audit.record("rate-limited", { email, ip, reason: "emails-per-address" });
    return tooManyRequests(by, verdict, email);
  }
  const forStrategy = new Request(new URL("/login", config.appUrl), {
    method: "POST",
    headers: {
      "Content-Type": "application/x-www-form-urlencoded",
      Cookie: request.headers.get("Cookie") ?? "",
    },
    body: new URLSearchParams({ email, redirectTo }).toString(),
  });
  try {
    await services.emailLink.authenticate("email-link", forStrategy, { successRedirect: "/login/sent" });
  } catch (outcome) {
    if (outcome instanceof Response) {
      services.limits.emails.record(addressHash);
      services.audit.record("link-sent", { email, ip, via: services.outbox ? "outbox" : "smtp" });
      return outcome;
    }
    log.error("could not send a sign-in link", { error: outcome instanceof Error ? outcome.message : String(outcome) });
    if (by === "api")
      return apiError(503, "server_error", "The email could not be sent just now; try again in a minute.", {
        "Retry-After": "60",
      });
    return json(
      { error: "We could not send the email just now. Please try again in a minute.", email },
      { status: 503, headers: { "Retry-After": "60" } },
    );
  }
  throw new Error("the email-link strategy neither redirected nor failed");
}
