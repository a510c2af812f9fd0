/**
 * The JSON API's hot paths (`GET /api/me`, `POST /auth/refresh`) answered straight from Express
 * with the app's own functions (app/lib/api-answers.server.ts): no Fetch Request, no Remix route
 * matching per call. Mounted after the request checks, in production builds only.
 */
import express, { type Request, type RequestHandler, type Router } from "express";
import type { ApiAnswer, ApiAnswers } from "../app/lib/api-answers.server";
import type { WithHeaders } from "../app/lib/auth.server";

/** The headers as the app reads them (Fetch's `get`: lower-cased name, repeated values joined). */
function requestOf(req: Request): WithHeaders {
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

export function fastApi(api: ApiAnswers, durable: () => Promise<void>): Router {
  const answer =
    (produce: (request: WithHeaders) => Promise<ApiAnswer>): RequestHandler =>
    async (req, res, next) => {
      try {
        const result = await produce(requestOf(req));
        // acknowledged means durable: an answer may report a write (a touched session, a new seal)
        await durable();
        res.status(result.status).set(result.headers);
        for (const cookie of result.setCookies) res.append("Set-Cookie", cookie);
        res.json(result.body);
      } catch (error) {
        next(error);
      }
    };
  const router = express.Router();
  router.get(
    "/api/me",
    answer((request) => api.me(request)),
  );
  router.post(
    "/auth/refresh",
    answer((request) => api.refresh(request)),
  );
  return router;
}
