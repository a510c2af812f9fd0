/** finishSignIn: the one end of every sign-in method (user by verified email, session, audit, Set-Cookie, redirect or JSON). */
import { json, redirect, redirectDocument } from "@remix-run/node";
import type { User, UserStore } from "#app/lib/accounts/users.server.ts";
import type { Audit } from "#app/lib/abuse/audit.server.ts";
import type { Auth } from "#app/lib/session/auth.server.ts";
import type { AccountStatus } from "#app/lib/accounts/status.server.ts";
import type { SignupPolicy } from "#app/lib/accounts/signup.server.ts";
import type { SignInMethod } from "#app/lib/sign-in/methods.server.ts";
import { apiError } from "#app/lib/http.server.ts";
import { safeRedirect, type RedirectRules } from "#app/lib/validation.server.ts";

export interface FinishDeps {
  users: UserStore;
  auth: Auth;
  audit: Audit;
  /** where the person may be sent afterwards: this site, FORWARD_AUTH_HOSTS */
  redirects: RedirectRules;
  /** resolves once the rows written so far are durable: "signed in" is only said of a kept session */
  durable: () => Promise<void>;
  /** disabled accounts: no method signs them in */
  status?: AccountStatus;
  /** who may create an account: asked only for an address with none */
  signup?: SignupPolicy;
}

export interface Finish {
  method: SignInMethod;
  /** who signed in: a verified address (created on first sign-in), or a user the method found (passkey) */
  who: { email: string; identity?: { provider: string; subject: string } } | { user: User };
  ip: string;
  /** pages get a redirect; API clients get the access token as JSON; a page's script (passkey) where to go */
  answer: { to: "page"; redirectTo: unknown } | { to: "api" } | { to: "script"; redirectTo: unknown };
  /** more headers for the answer (clearing a method's state cookie, Cache-Control) */
  headers?: HeadersInit;
  /**
   * What the method spent (a link's or a code's one use), taken back when the sign-in cannot be
   * stored: the 503 says "try again", and trying again must work.
   */
  release?: () => Promise<void>;
}

/** Why a proven address or passkey still does not sign in: the page `/login?refused=` explains it. */
function refuse(deps: FinishDeps, finish: Finish, reason: "disabled" | "signup", uid?: string): Response {
  deps.audit.record("refused", { uid, ip: finish.ip, method: finish.method.id, reason: `sign-in-${reason}` });
  const message =
    reason === "disabled"
      ? "This account is disabled. Contact the site's administrators."
      : "This address cannot create an account here. Ask the site's administrators for an invitation.";
  if (finish.answer.to === "page") {
    return redirect(`/login?refused=${reason}`, { headers: { "Cache-Control": "no-store" } });
  }
  return apiError(403, "forbidden", message);
}

export async function finishSignIn(deps: FinishDeps, request: Request, finish: Finish): Promise<Response> {
  const existing = "user" in finish.who ? finish.who.user : deps.users.findByEmail(finish.who.email);
  if (existing && deps.status?.isDisabled(existing.id)) return refuse(deps, finish, "disabled", existing.id);
  if (!existing && "email" in finish.who && deps.signup && !deps.signup.mayCreate(finish.who.email)) {
    return refuse(deps, finish, "signup");
  }
  const user =
    "user" in finish.who
      ? finish.who.user
      : deps.users.findOrCreateByEmail(
          finish.who.email,
          finish.who.identity ?? { provider: "email", subject: finish.who.email },
        );
  if (!existing && "email" in finish.who) deps.signup?.forget(finish.who.email);
  const { session, setCookie } = await deps.auth.signIn(user, request, finish.method.id);
  try {
    await deps.durable();
  } catch {
    // not kept, so not acknowledged: a 503 the person or client can retry, never "signed in"; and
    // what the method spent is given back, or the retry would find the link used
    await finish.release?.().catch(() => {});
    const message = "The sign-in could not be stored just now. Please try again in a minute.";
    if (finish.answer.to !== "page") return apiError(503, "unavailable", message, { "Retry-After": "60" });
    throw new Response(message, { status: 503, headers: { "Retry-After": "60", "Cache-Control": "no-store" } });
  }
  deps.audit.record("sign-in", {
    uid: user.id,
    method: finish.method.id,
    ip: finish.ip,
    session: session.sid.slice(0, 8),
  });
  const headers = new Headers(finish.headers);
  headers.set("Cache-Control", "no-store");
  headers.append("Set-Cookie", setCookie);
  // a whole new document, not a client-side navigation: the destination may be outside the Remix app
  // (an OpenID provider interaction, /oidc/interaction/…), and a new session deserves a fresh page
  if (finish.answer.to === "page") {
    return redirectDocument(safeRedirect(finish.answer.redirectTo, deps.redirects), { headers });
  }
  if (finish.answer.to === "script") {
    return json({ redirectTo: safeRedirect(finish.answer.redirectTo, deps.redirects) }, { headers });
  }
  const token = await deps.auth.tokens.issue(user.id, session.sid);
  return json({ access_token: token, token_type: "Bearer", expires_in: deps.auth.tokens.ttlSeconds }, { headers });
}
