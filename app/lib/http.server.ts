import { json } from "@remix-run/node";

export type ApiErrorCode =
  | "invalid_request"
  | "invalid_token"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "rate_limited"
  /** the shared store (this node's disk, Redis) cannot keep changes right now: try again */
  | "unavailable"
  | "server_error";

/**
 * A 401's WWW-Authenticate, agreeing with its body: `invalid_token` and `invalid_request` are
 * named in both; a request with no usable credentials (`unauthorized`) gets a bare challenge,
 * as RFC 6750 §3.1 asks (no error code when the request carried no authentication).
 */
export function bearerChallenge(error: string, message: string): string {
  if (error !== "invalid_token" && error !== "invalid_request") return `Bearer realm="api"`;
  return `Bearer realm="api", error="${error}", error_description="${message.replace(/"/g, "'")}"`;
}

/** The one JSON error shape: `{"error": code, "message": text}`; 401s say why in WWW-Authenticate. */
export function apiError(
  status: number,
  error: ApiErrorCode,
  message: string,
  headers: HeadersInit = {},
  /** more fields for clients that want them, e.g. `problem` (which case) or `tries_left` */
  extra: Record<string, string | number> = {},
) {
  const h = new Headers(headers);
  h.set("Cache-Control", "no-store");
  if (status === 401) h.set("WWW-Authenticate", bearerChallenge(error, message));
  return json({ error, message, ...extra }, { status, headers: h });
}

export const NO_STORE = { "Cache-Control": "no-store" } as const;
