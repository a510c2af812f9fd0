/** Signing in with the emailed code, for the "check your email" page and for API clients: limits, the check, finishSignIn. */
import { json } from "@remix-run/node";
import type { Audit } from "#app/lib/abuse/audit.server.ts";
import type { SlidingWindowLimiter } from "#app/lib/abuse/rate-limit.server.ts";
import { apiError } from "#app/lib/http.server.ts";
import { finishSignIn, type FinishDeps } from "#app/lib/sign-in/finish.server.ts";
import type { SignInMethods } from "#app/lib/sign-in/methods.server.ts";
import { isRefusal } from "#app/lib/sign-in/refusal.server.ts";
import type { MessageId, Said } from "#app/lib/i18n/intl.ts";
import { CodeError, isCodeError, type EmailCodes } from "./codes.server";

export interface CodeSignInDeps {
  codes: EmailCodes;
  /** LINK_SAME_BROWSER: a code, like its link, works only for the client that asked (its link cookie) */
  sameBrowser: boolean;
  /** a code lives as long as its link: said when one has expired */
  linkTtlMs: number;
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

/** The API's words (English, for developers); pages say the same in the person's language. */
const MESSAGES: Record<CodeError["problem"], string> = {
  wrong: "That code is not right.",
  expired: "This code has expired, or there is none for this address: ask for a new email.",
  burnt: "This code was typed wrong too many times and no longer works: ask for a new email.",
  used: "This code, or its link, was already used (or a newer one was): ask for a new email.",
  malformed: "Type the 6 digits from the email.",
  budget: "Too many wrong codes for this address. Use the link in the email, or try a code again later.",
  "issuer-unreachable": "We cannot check this code right now. Use the link in the email, or ask for a new one.",
};

const PAGE_MESSAGES: Record<CodeError["problem"], MessageId> = {
  wrong: "code.wrong",
  expired: "code.expired",
  burnt: "code.burnt",
  used: "code.used",
  malformed: "code.malformed",
  budget: "code.budget",
  "issuer-unreachable": "code.unreachable",
};

/** The page's answer to a refused code: the form again, with why (and whether a new email is the way on). */
function pageRefusal(status: number, error: Said, headers: HeadersInit = {}, newEmail = false) {
  return json({ error, newEmail }, { status, headers: { ...headers, "Cache-Control": "no-store" } });
}

const minutesOf = (seconds: number) => Math.max(1, Math.ceil(seconds / 60));

export async function signInWithCode(deps: CodeSignInDeps, request: Request, attempt: CodeAttempt): Promise<Response> {
  const { audit } = deps;
  const { ip } = attempt;
  const api = attempt.answer.to === "api";
  const perIp = deps.limits.codesPerIp.hit(ip);
  if (!perIp.ok) {
    audit.record("rate-limited", { ip, reason: "codes-per-ip" });
    const headers = { "Retry-After": String(perIp.retryAfterSeconds) };
    const message = "Too many codes were tried from your network. Please wait a few minutes.";
    if (api) return apiError(429, "rate_limited", message, headers);
    return pageRefusal(429, { id: "code.perIp", values: { minutes: minutesOf(perIp.retryAfterSeconds) } }, headers);
  }
  if (!attempt.email) {
    audit.record("refused", { ip, method: "code", reason: "code-no-pending-sign-in" });
    const message = "There is no sign-in waiting in this browser. Ask for a new email here.";
    return api ? apiError(400, "invalid_request", message) : pageRefusal(400, { id: "code.noneWaiting" }, {}, true);
  }
  if (deps.sameBrowser && attempt.askedFor !== attempt.email) {
    // a leaked link or mail alone must not sign in elsewhere: the code is bound as the link is
    audit.record("refused", { email: attempt.email, ip, method: "code", reason: "code-other-client" });
    const message = "The code works only for the client that asked for it: send the cookie POST /api/auth/email set.";
    return api ? apiError(400, "invalid_request", message) : pageRefusal(400, { id: "code.noneWaiting" }, {}, true);
  }
  const code = typeof attempt.code === "string" ? attempt.code.replace(/[\s-]/g, "") : "";
  try {
    const release = await deps.codes.use(attempt.email, code);
    return await finishSignIn(deps.finish, request, {
      method: deps.methods.get("code"),
      who: { email: attempt.email },
      ip,
      answer: attempt.answer.to === "page" ? { to: "page", redirectTo: attempt.answer.redirectTo } : { to: "api" },
      headers: attempt.answer.to === "page" ? attempt.answer.headers : {},
      release,
    });
  } catch (caught) {
    if (!isRefusal(caught)) throw caught;
    // Only the client holding the link cookie is told which case it is (its own request). Without
    // LINK_SAME_BROWSER anyone may try any address: then every case answers as a wrong code did,
    // so nobody learns whether an address has a code pending, used or burnt.
    const error =
      !deps.sameBrowser && isCodeError(caught) && ["wrong", "expired", "burnt", "used"].includes(caught.problem)
        ? new CodeError("wrong", caught.reason)
        : caught;
    const reason = isCodeError(error) ? error.reason : error.problem;
    audit.record(isCodeError(error) && error.problem === "budget" ? "rate-limited" : "refused", {
      email: attempt.email,
      ip,
      method: "code",
      reason,
    });
    const headers: Record<string, string> =
      isCodeError(error) && error.retryAfterSeconds ? { "Retry-After": String(error.retryAfterSeconds) } : {};
    if (!api) {
      if (!isCodeError(error)) return pageRefusal(error.status, { id: "code.unavailable" }, headers);
      const values = {
        left: error.triesLeft ?? 0,
        minutes: minutesOf(error.retryAfterSeconds ?? 60),
        // the link and its code live as long as each other
        ...(error.problem === "expired" ? { minutes: Math.round(deps.linkTtlMs / 60_000) } : {}),
      };
      const newEmail = ["expired", "burnt", "used"].includes(error.problem);
      // a wrong code whose tries left are not told (see above) is said without a count
      const id =
        error.problem === "wrong" && error.triesLeft === undefined ? "code.wrongPlain" : PAGE_MESSAGES[error.problem];
      return pageRefusal(error.status, { id, values }, headers, newEmail);
    }
    const message = isCodeError(error) ? MESSAGES[error.problem] : "We cannot sign you in just now. Try again soon.";
    const kind = error.status === 429 ? "rate_limited" : error.status >= 500 ? "unavailable" : "invalid_request";
    const extra: Record<string, string | number> = isCodeError(error) ? { problem: error.problem } : {};
    if (isCodeError(error) && error.triesLeft !== undefined) extra.tries_left = error.triesLeft;
    return apiError(error.status, kind, message, headers, extra);
  }
}
