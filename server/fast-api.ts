/**
 * The JSON API's hot paths (`GET /api/me`, `POST /auth/refresh`) answered straight from Express
 * with the app's own functions (app/lib/api-answers.server.ts): no Fetch Request, no Remix route
 * matching per call. Mounted after the request checks, in production builds only. What the
 * session layer sends back (a refresh's cookie, a fresh token) is attached here, on every answer.
 */
import express, { type Request, type RequestHandler, type Router } from "express";
import type { SessionHeaders } from "#app/lib/context.server.ts";
import type { ApiAnswer, ApiAnswers } from "#app/lib/session/api-answers.server.ts";
import type { WithHeaders } from "#app/lib/session/auth.server.ts";
import { madeDurable, type Durability } from "./http";
import type { Logger } from "./log";
import { sendSessionHeaders, sessionHeadersOf } from "./session-headers";

/** The headers as the app reads them (Fetch's `get`: lower-cased name, repeated values joined). */
export function headersOf(req: Request): WithHeaders {
  return {
    headers: {
      get(name: string): string | null {
        const value = req.headers[name.toLowerCase()];
        if (value === undefined) return null;
        return Array.isArray(value) ? value.join(", ") : value;
      },
    },
  };
}

export function fastApi(api: ApiAnswers, durability: Durability, log: Logger): Router {
  const answer =
    (produce: (request: WithHeaders, out: SessionHeaders) => Promise<ApiAnswer>): RequestHandler =>
    async (req, res, next) => {
      try {
        const writesBefore = durability.writes();
        const result = await produce(headersOf(req), sessionHeadersOf(res));
        // acknowledged means durable: an answer that wrote (a touched session, a refresh's next
        // generation) waits for the write; one that only read does not, so reads go on in an outage
        // (a 503 still carries the new cookie: refuse() sends the session headers too)
        if (durability.writes() !== writesBefore && !(await madeDurable(durability, req, res, log))) return;
        res.status(result.status).set(result.headers);
        sendSessionHeaders(res);
        res.json(result.body);
      } catch (error) {
        next(error);
      }
    };
  const router = express.Router();
  router.get(
    "/api/me",
    answer((request, out) => api.me(request, out)),
  );
  router.post(
    "/auth/refresh",
    answer((request, out) => api.refresh(request, out)),
  );
  return router;
}
