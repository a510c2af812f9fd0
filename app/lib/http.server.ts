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

/** The one JSON error shape: `{"error": code, "message": text}`; 401s say why in WWW-Authenticate. */
export function apiError(status: number, error: ApiErrorCode, message: string, headers: HeadersInit = {}) {
  const h = new Headers(headers);
  h.set("Cache-Control", "no-store");
  if (status === 401) {
    const bearerError = error === "invalid_token" ? "invalid_token" : "invalid_request";
    h.set(
      "WWW-Authenticate",
      `Bearer realm="api", error="${bearerError}", error_description="${message.replace(/"/g, "'")}"`,
    );
  }
  return json({ error, message }, { status, headers: h });
}

export const NO_STORE = { "Cache-Control": "no-store" } as const;
