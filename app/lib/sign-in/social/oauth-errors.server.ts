import { AuthorizationError } from "remix-auth";
import { OAuth2Error, OAuth2RequestError } from "remix-auth-oauth2";
import { Refusal } from "#app/lib/sign-in/refusal.server.ts";

/**
 * Why a sign-in through a provider was refused. Every one becomes a page that explains it and
 * offers to try again; none is a 5xx page.
 */
export type OAuthProblem =
  /** the person declined at the provider (error=access_denied) */
  | "denied"
  /** the provider answered with another OAuth error, or an HTTP error */
  | "provider-error"
  /** no sign-in was started in this browser, it expired, or the answer's state does not match it */
  | "state"
  /** the provider refused the code: expired, used already, or not issued for this PKCE verifier */
  | "code"
  | "unreachable"
  | "timeout"
  /** the provider's answer is not what the protocol says (not JSON, missing fields) */
  | "malformed"
  /** the ID token failed validation: signature, issuer, audience, expiry or nonce */
  | "id-token"
  | "no-email"
  | "unverified-email";

export const PROBLEM_STATUS: Record<OAuthProblem, number> = {
  denied: 403,
  "provider-error": 502,
  state: 400,
  code: 400,
  unreachable: 502,
  timeout: 504,
  malformed: 502,
  "id-token": 502,
  "no-email": 403,
  "unverified-email": 403,
};

/** An expected failure of a provider sign-in; `detail` is for the log (never codes, tokens or secrets). */
export class OAuthError extends Refusal<OAuthProblem> {
  readonly kind = "oauth-error";
  constructor(
    problem: OAuthProblem,
    readonly detail: string,
  ) {
    super(problem, PROBLEM_STATUS[problem], `provider sign-in refused: ${problem} (${detail})`);
  }
}

export function isOAuthError(error: unknown): error is OAuthError {
  return typeof error === "object" && error !== null && (error as { kind?: unknown }).kind === "oauth-error";
}

/** A failed fetch, by what the person can do about it: wait (timeout) or come back later (unreachable). */
export function networkError(error: unknown, what: string): OAuthError | undefined {
  if (!(error instanceof Error)) return undefined;
  if (
    error.name === "TimeoutError" ||
    error.name === "AbortError" ||
    (error as { code?: unknown }).code === "ERR_JWKS_TIMEOUT"
  ) {
    return new OAuthError("timeout", `${what}: no answer in time`);
  }
  const code = (error as { code?: unknown }).code ?? (error.cause as { code?: unknown } | undefined)?.code;
  if (error.message === "fetch failed" || (typeof code === "string" && /^(E[A-Z]+|UND_ERR_\w+)$/.test(code))) {
    return new OAuthError("unreachable", `${what}: ${typeof code === "string" ? code : error.message}`);
  }
  return undefined;
}

/**
 * What remix-auth-oauth2 threw, as an OAuthError. It wraps every failure in an AuthorizationError
 * whose `cause` is the original; anything not recognised is returned unchanged (a real bug: 500).
 */
export function toOAuthError(thrown: unknown, what: string): unknown {
  const error = thrown instanceof AuthorizationError && thrown.cause ? thrown.cause : thrown;
  if (isOAuthError(error)) return error;
  if (error instanceof OAuth2Error) {
    // the provider's redirect carried ?error=…
    return error.message === "access_denied"
      ? new OAuthError("denied", `${what} answered access_denied`)
      : new OAuthError("provider-error", `${what} answered error=${error.message.slice(0, 64)}`);
  }
  if (error instanceof OAuth2RequestError) {
    // the token endpoint answered {"error": …}
    return error.message === "invalid_grant"
      ? new OAuthError("code", `${what} token endpoint: invalid_grant`)
      : new OAuthError("provider-error", `${what} token endpoint: ${error.message.slice(0, 64)}`);
  }
  const network = networkError(error, `${what} token endpoint`);
  if (network) return network;
  if (error instanceof ReferenceError || error instanceof RangeError) {
    // "Missing state on session.", "State in URL doesn't match state in session.", "Missing code in the URL"
    return new OAuthError("state", error.message);
  }
  if (error instanceof SyntaxError || (error instanceof Error && /^Missing or invalid '/.test(error.message))) {
    return new OAuthError("malformed", `${what} token endpoint: ${error.message.slice(0, 80)}`);
  }
  return thrown;
}
