/**
 * The JSON API's hot answers (`GET /api/me`, `POST /auth/refresh`) as plain functions of a
 * request's headers, so server/ can answer them straight from Express in production, without
 * Remix's per-request route matching and Fetch objects; their Remix routes call the same functions.
 */
import { bearerChallenge } from "#app/lib/http.server.ts";
import { json } from "@remix-run/node";
import type { AppContext } from "#app/lib/context.server.ts";
import type { WithHeaders } from "./auth.server";
import { getServices } from "#app/lib/services.server.ts";

export interface ApiAnswer {
  status: number;
  headers: Record<string, string>;
  setCookies: string[];
  body: { error: string; message: string } | Record<string, unknown>;
}

export interface ApiAnswers {
  me(request: WithHeaders): Promise<ApiAnswer>;
  refresh(request: WithHeaders): Promise<ApiAnswer>;
  /** the request's session is one of ADMIN_EMAILS' (operations pages: /metrics) */
  isAdmin(request: WithHeaders): Promise<boolean>;
}

/** The one JSON error shape: `{"error","message"}`; a 401 says why in WWW-Authenticate. */
export function errorAnswer(
  status: number,
  error: string,
  message: string,
  headers: Record<string, string> = {},
): ApiAnswer {
  const h: Record<string, string> = { ...headers, "Cache-Control": "no-store" };
  if (status === 401) h["WWW-Authenticate"] = bearerChallenge(error, message);
  return { status, headers: h, setCookies: [], body: { error, message } };
}

export function apiAnswers(ctx: AppContext): ApiAnswers {
  const { auth } = getServices(ctx);
  return {
    async isAdmin(request) {
      const signedIn = await auth.fromCookie(request);
      return !!signedIn && ctx.config.adminEmails.includes(signedIn.user.email);
    },
    async me(request) {
      const result = await auth.fromBearer(request);
      if (!result.ok) return errorAnswer(result.status, result.error, result.message);
      const headers: Record<string, string> = { "Cache-Control": "no-store" };
      if (result.refreshedToken) headers["X-Access-Token"] = result.refreshedToken;
      return {
        status: 200,
        headers,
        setCookies: result.setCookie ? [result.setCookie] : [],
        body: { id: result.user.id, email: result.user.email },
      };
    },
    /** Trade a valid session cookie for a fresh access token. */
    async refresh(request) {
      // each refresh moves the session to its next generation: a kept copy of this cookie stops working
      const signedIn = await auth.fromCookie(request, { refresh: true });
      if (!signedIn) return errorAnswer(401, "unauthorized", "No valid session: sign in first.");
      const token = await auth.tokens.issue(signedIn.user.id, signedIn.session.sid);
      return {
        status: 200,
        headers: { "Cache-Control": "no-store", Pragma: "no-cache" },
        setCookies: signedIn.setCookie ? [signedIn.setCookie] : [],
        body: { access_token: token, token_type: "Bearer", expires_in: auth.tokens.ttlSeconds },
      };
    },
  };
}

/** The same answer as a Fetch Response, for the Remix routes. */
export function toResponse(answer: ApiAnswer): Response {
  const headers = new Headers(answer.headers);
  for (const cookie of answer.setCookies) headers.append("Set-Cookie", cookie);
  return json(answer.body, { status: answer.status, headers });
}
