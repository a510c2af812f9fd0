/**
 * Forward auth (`GET /auth/forward`) for reverse proxies: nginx `auth_request`, Traefik
 * `forwardAuth`, Caddy `forward_auth`. A plain function of the request's headers, answered by
 * server/ straight from Express: it is on the path of every request to every protected app.
 */
import type { AppConfig } from "#app/lib/context.server.ts";
import type { Auth, WithHeaders } from "#app/lib/session/auth.server.ts";
import { safeRedirect } from "#app/lib/validation.server.ts";

export interface ForwardQuestion {
  /** the URL the person asked the proxy for, from headers of a TRUST_PROXY address; undefined otherwise */
  originalUrl: string | undefined;
  /** `?redirect=1`: answer a stranger with a redirect to sign in (Traefik, Caddy), not a 401 (nginx) */
  redirect: boolean;
}

export interface ForwardAnswer {
  status: 200 | 401 | 302;
  headers: Record<string, string>;
  /** set when the original URL's host was refused (not in FORWARD_AUTH_HOSTS): for the operator's log */
  refusedHost?: string;
}

const NO_STORE = { "Cache-Control": "no-store" };

/**
 * 200 with `X-Auth-Request-User` (the user's UUID) and `X-Auth-Request-Email` for a live session
 * cookie; else 401, or with `redirect` a 302 to `APP_URL/login?redirectTo=<original URL>` — the
 * original URL only when safeRedirect keeps it (its host in FORWARD_AUTH_HOSTS). The check never
 * sets a cookie and never moves the session's generation: a proxy cannot be relied on to pass a
 * Set-Cookie on, and a dropped generation move would later look like theft.
 */
export function forwardAuth(
  auth: Pick<Auth, "check">,
  config: Pick<AppConfig, "appUrl" | "forwardAuthHosts">,
): (request: WithHeaders, question: ForwardQuestion) => Promise<ForwardAnswer> {
  const login = new URL("/login", config.appUrl).href;
  return async (request, { originalUrl, redirect }) => {
    const signedIn = await auth.check(request);
    if (signedIn) {
      return {
        status: 200,
        headers: { ...NO_STORE, "X-Auth-Request-User": signedIn.user.id, "X-Auth-Request-Email": signedIn.user.email },
      };
    }
    if (!redirect) return { status: 401, headers: NO_STORE };
    const back = originalUrl === undefined ? "" : safeRedirect(originalUrl, config, "");
    const refusedHost = originalUrl !== undefined && back === "" ? hostOf(originalUrl) : undefined;
    const location = back ? `${login}?redirectTo=${encodeURIComponent(back)}` : login;
    return { status: 302, headers: { ...NO_STORE, Location: location }, refusedHost };
  };
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return "(unreadable)";
  }
}
