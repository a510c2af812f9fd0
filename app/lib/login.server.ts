import { json } from "@remix-run/node";
import { apiError } from "./http.server";
import type { Services } from "./services.server";
import { clientKey } from "./client-key.server";
import type { Verdict } from "./rate-limit.server";
import { mailboxOf } from "./validation.server";

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
  const verdict = services.limits.requestsPerIp.hit(clientKey(ip));
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
  // `ada+x@` and `ada@` are one mailbox for the budget; the mail still goes to the address typed
  const mailbox = services.audit.hashEmail(mailboxOf(email));
  let reserved: Awaited<ReturnType<typeof services.limits.emails.take>>;
  try {
    reserved = await services.limits.emails.take(mailbox, services.audit.keyedHash(`client:${clientKey(ip)}`));
  } catch (error) {
    // by name: the app bundle has its own copy of the cluster's classes
    if (!(error instanceof Error) || error.name !== "ClusterUnavailableError") throw error;
    log.warn("could not count a link email: the shared store is unreachable", { error: error.message });
    return cannotSend(by, email);
  }
  if (!reserved.ok) {
    services.audit.record("rate-limited", { email, ip, reason: "emails-per-address" });
    return tooManyRequests(by, reserved, email);
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
      services.audit.record("link-sent", { email, ip, via: services.outbox ? "outbox" : "smtp" });
      return outcome;
    }
    log.error("could not send a sign-in link", { error: outcome instanceof Error ? outcome.message : String(outcome) });
    // the mail did not go out: it does not count against the address
    await reserved.release().catch(() => undefined);
    return cannotSend(by, email);
  }
  throw new Error("the email-link strategy neither redirected nor failed");
}

function cannotSend(by: RequestedBy, email: string): Response {
  if (by === "api")
    return apiError(503, "server_error", "The email could not be sent just now; try again in a minute.", {
      "Retry-After": "60",
    });
  return json(
    { error: "We could not send the email just now. Please try again in a minute.", email },
    { status: 503, headers: { "Retry-After": "60" } },
  );
}
