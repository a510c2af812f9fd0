/** Signing in with the emailed code, for the "check your email" page and for API clients: limits, the check, finishSignIn. */
import { json } from "@remix-run/node";
import type { Audit } from "#app/lib/abuse/audit.server.ts";
import type { SlidingWindowLimiter } from "#app/lib/abuse/rate-limit.server.ts";
import { apiError } from "#app/lib/http.server.ts";
import { finishSignIn, type FinishDeps } from "#app/lib/sign-in/finish.server.ts";
import type { SignInMethods } from "#app/lib/sign-in/methods.server.ts";
import { isRefusal } from "#app/lib/sign-in/refusal.server.ts";
import { isCodeError, type CodeError, type EmailCodes } from "./codes.server";

export interface CodeSignInDeps {
  codes: EmailCodes;
  /** LINK_SAME_BROWSER: a code, like its link, works only for the client that asked (its link cookie) */
  sameBrowser: boolean;
  limits: { codesPerIp: SlidingWindowLimiter };
  audit: Audit;
  methods: SignInMethods;
  finish: FinishDeps;
}

export interface CodeAttempt {
  /** a normalised address, or null when the page has no pending sign-in */
  email: string | null;
  /** the address in the requester's link cookie: who this client asked a code for */
  askedFor: string | null;
  /** as typed: spaces and dashes people type between digits are dropped */
  code: unknown;
  ip: string;
  answer: { to: "page"; redirectTo: unknown; headers: HeadersInit } | { to: "api" };
}

const MESSAGES: Record<CodeError["problem"], string> = {
  wrong: "That code is not right, or it no longer works. Check the newest email, or ask for a new code.",
  malformed: "Type the 6 digits from the email.",
  budget: "Too many wrong codes for this address. Use the link in the email, or try a code again later.",
  "issuer-unreachable": "We cannot check this code right now. Use the link in the email, or ask for a new one.",
};

/** The page's answer to a refused code: the form again, with why. */
function pageRefusal(status: number, message: string, headers: HeadersInit = {}) {
  return json({ error: message }, { status, headers: { ...headers, "Cache-Control": "no-store" } });
}

export async function signInWithCode(deps: CodeSignInDeps, request: Request, attempt: CodeAttempt): Promise<Response> {
  const { audit } = deps;
  const { ip } = attempt;
  const api = attempt.answer.to === "api";
  const perIp = deps.limits.codesPerIp.hit(ip);
  if (!perIp.ok) {
    audit.record("rate-limited", { ip, reason: "codes-per-ip" });
    const headers = { "Retry-After": String(perIp.retryAfterSeconds) };
    const message = "Too many codes were tried from your network. Please wait a few minutes.";
    return api ? apiError(429, "rate_limited", message, headers) : pageRefusal(429, message, headers);
  }
  if (!attempt.email) {
    audit.record("refused", { ip, method: "code", reason: "code-no-pending-sign-in" });
    const message = "There is no sign-in waiting in this browser. Ask for a new email here.";
    return api ? apiError(400, "invalid_request", message) : pageRefusal(400, message);
  }
  if (deps.sameBrowser && attempt.askedFor !== attempt.email) {
    // a leaked link or mail alone must not sign in elsewhere: the code is bound as the link is
    audit.record("refused", { email: attempt.email, ip, method: "code", reason: "code-other-client" });
    const message = api
      ? "The code works only for the client that asked for it: send the cookie POST /api/auth/email set."
      : "There is no sign-in waiting in this browser. Ask for a new email here.";
    return api ? apiError(400, "invalid_request", message) : pageRefusal(400, message);
  }
  const code = typeof attempt.code === "string" ? attempt.code.replace(/[\s-]/g, "") : "";
  try {
    await deps.codes.use(attempt.email, code);
    return await finishSignIn(deps.finish, request, {
      method: deps.methods.get("code"),
      who: { email: attempt.email },
      ip,
      answer: attempt.answer.to === "page" ? { to: "page", redirectTo: attempt.answer.redirectTo } : { to: "api" },
      headers: attempt.answer.to === "page" ? attempt.answer.headers : {},
    });
  } catch (error) {
    if (!isRefusal(error)) throw error;
    const reason = isCodeError(error) ? error.reason : error.problem;
    audit.record(isCodeError(error) && error.problem === "budget" ? "rate-limited" : "refused", {
      email: attempt.email,
      ip,
      method: "code",
      reason,
    });
    const message = isCodeError(error) ? MESSAGES[error.problem] : "We cannot sign you in just now. Try again soon.";
    const headers: Record<string, string> =
      isCodeError(error) && error.retryAfterSeconds ? { "Retry-After": String(error.retryAfterSeconds) } : {};
    if (!api) return pageRefusal(error.status, message, headers);
    // 503: the shared store (Redis) or the issuing node cannot be reached: try again
    const kind = error.status === 429 ? "rate_limited" : error.status >= 500 ? "unavailable" : "invalid_request";
    return apiError(error.status, kind, message, headers);
  }
}
