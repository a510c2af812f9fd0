/**
 * The door for app code: who is signed in, for pages, loaders and API routes. Import from here
 * (`#app/lib/auth/index.server.ts`), never from app/lib/session/.
 *
 *   const { user } = await requireUser(request, context);      // a page: else to /login and back
 *   const signedIn = await optionalUser(request, context);     // a page anyone may see
 *   const { user } = await requireApiUser(request, context);   // an API route: Bearer, else 401 JSON
 *
 * Safe by construction: whatever the session layer must send back while answering (a renewed
 * cookie, a fresh access token in X-Access-Token) goes to the request's `context.sessionHeaders`,
 * which the server attaches to the response itself — a page, a data request, a thrown redirect or
 * an error page alike. A route that uses nothing but the user cannot drop a cookie and sign anyone out.
 */
import { redirect } from "@remix-run/node";
import type { AppContext, SessionHeaders } from "#app/lib/context.server.ts";
import { apiError, NO_STORE } from "#app/lib/http.server.ts";
import { getServices } from "#app/lib/services.server.ts";
import type { SignedIn } from "#app/lib/session/auth.server.ts";

export type { SignedIn };
export type { User } from "#app/lib/accounts/users.server.ts";

/** What the door needs of a loader's or action's `context` (Remix's load context has both). */
export interface AuthContext {
  app: AppContext;
  sessionHeaders: SessionHeaders;
}

/** The signed-in person, or null. For pages anyone may see that differ for a signed-in person. */
export async function optionalUser(request: Request, context: AuthContext): Promise<SignedIn | null> {
  return getServices(context.app).auth.fromCookie(request, context.sessionHeaders);
}

/**
 * The signed-in person; anyone else is redirected to `/login?redirectTo=<this page>` and comes
 * back here after signing in. The cookie is left alone: a session signed in on another node a
 * moment ago may not have reached this one yet, and must not be cleared from the browser.
 */
export async function requireUser(request: Request, context: AuthContext): Promise<SignedIn> {
  const signedIn = await optionalUser(request, context);
  if (signedIn) return signedIn;
  const url = new URL(request.url);
  throw redirect(`/login?redirectTo=${encodeURIComponent(url.pathname + url.search)}`, { headers: NO_STORE });
}

/**
 * The person behind `Authorization: Bearer <access token>`. An expired (but genuine) token is
 * still accepted together with the cookie of the same session, and a fresh token goes back in
 * `X-Access-Token`. Anyone else gets a 401 JSON answer with `WWW-Authenticate` (thrown).
 */
export async function requireApiUser(request: Request, context: AuthContext): Promise<SignedIn> {
  const result = await getServices(context.app).auth.fromBearer(request, context.sessionHeaders);
  if (!result.ok) throw apiError(result.status, result.error, result.message);
  return { user: result.user, session: result.session };
}

/**
 * End the request's session (`everywhere`: every session of its user) on every node, and clear
 * the cookie. Returns who was signed out, or null when nobody was.
 */
export async function signOut(
  request: Request,
  context: AuthContext,
  scope: "this" | "everywhere",
): Promise<{ uid: string; ended: number } | null> {
  return getServices(context.app).auth.signOutRequest(request, context.sessionHeaders, scope);
}
