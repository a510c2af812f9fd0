/**
 * The hot answers (`GET /api/me`, `POST /auth/refresh`, `GET /auth/forward`) as plain functions of
 * a request's headers, so server/ can answer them straight from Express in production, without
 * Remix's per-request route matching and Fetch objects; the Remix routes call the same functions.
 * What the session layer sends back (a re-sealed cookie, a fresh token) goes to `out`, which the
 * caller attaches to the response whatever it is: server/ does, never each answer.
 */
import { bearerChallenge } from "#app/lib/http.server.ts";
import { json } from "@remix-run/node";
import type { AppContext, SessionHeaders } from "#app/lib/context.server.ts";
import { forwardAuth, type ForwardAnswer, type ForwardQuestion } from "#app/lib/auth/forward.server.ts";
import type { WithHeaders } from "./auth.server";
import { getServices } from "#app/lib/services.server.ts";

export interface ApiAnswer {
  status: number;
  headers: Record<string, string>;
  body: { error: string; message: string } | Record<string, unknown>;
}

export interface ApiAnswers {
  me(request: WithHeaders, out: SessionHeaders): Promise<ApiAnswer>;
  refresh(request: WithHeaders, out: SessionHeaders): Promise<ApiAnswer>;
  /** forward auth for reverse proxies: never sets a cookie (app/lib/auth/forward.server.ts) */
  forward(request: WithHeaders, question: ForwardQuestion): Promise<ForwardAnswer>;
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
  return { status, headers: h, body: { error, message } };
}

export function apiAnswers(ctx: AppContext): ApiAnswers {
  const { auth } = getServices(ctx);
  return {
    async isAdmin(request) {
      const signedIn = await auth.check(request);
      return !!signedIn && ctx.config.adminEmails.includes(signedIn.user.email);
    },
    async me(request, out) {
      const result = await auth.fromBearer(request, out);
      if (!result.ok) return errorAnswer(result.status, result.error, result.message);
      return {
        status: 200,
        headers: { "Cache-Control": "no-store" },
        body: { id: result.user.id, email: result.user.email },
      };
    },
    /** Trade a valid session cookie for a fresh access token. */
    async refresh(request, out) {
      // each refresh moves the session to its next generation: a kept copy of this cookie stops working
      const signedIn = await auth.fromCookie(request, out, { refresh: true });
      if (!signedIn) return errorAnswer(401, "unauthorized", "No valid session: sign in first.");
      const token = await auth.tokens.issue(signedIn.user.id, signedIn.session.sid);
      return {
        status: 200,
        headers: { "Cache-Control": "no-store", Pragma: "no-cache" },
        body: { access_token: token, token_type: "Bearer", expires_in: auth.tokens.ttlSeconds },
      };
    },
    forward: forwardAuth(auth, ctx.config),
  };
}

/** The same answer as a Fetch Response, for the Remix routes (the server adds the session headers). */
export function toResponse(answer: ApiAnswer): Response {
  return json(answer.body, { status: answer.status, headers: answer.headers });
}
