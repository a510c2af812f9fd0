import type { ActionFunctionArgs, HeadersFunction, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json, redirect } from "@remix-run/node";
import { Form, Link, useActionData, useLoaderData } from "@remix-run/react";
import { isLinkError, type LinkProblem } from "#app/lib/sign-in/email-link/strategy.server.ts";
import { getServices, type Services } from "#app/lib/services.server.ts";
import { safeRedirect } from "#app/lib/validation.server.ts";

export const meta: MetaFunction = () => [{ title: "Sign in · PwdlessGs" }];

// the token is in this page's URL: never send it on as a Referer, never cache the page
const LINK_PAGE_HEADERS = { "Cache-Control": "no-store", "Referrer-Policy": "no-referrer" };
export const headers: HeadersFunction = ({ loaderHeaders, actionHeaders }) => {
  const retryAfter = actionHeaders.get("Retry-After") ?? loaderHeaders.get("Retry-After");
  return retryAfter ? { ...LINK_PAGE_HEADERS, "Retry-After": retryAfter } : LINK_PAGE_HEADERS;
};

type Problem = { problem: LinkProblem | "rate-limited"; email: string | null };

const STATUS: Record<Problem["problem"], number> = {
  "rate-limited": 429,
  invalid: 400,
  expired: 410,
  used: 410,
  superseded: 410,
  "other-browser": 403,
  "issuer-unreachable": 503,
};

function problemResponse(problem: Problem["problem"], email: string | undefined, extra: HeadersInit = {}) {
  return json<Problem>(
    { problem, email: email ?? null },
    { status: STATUS[problem], headers: { ...LINK_PAGE_HEADERS, ...extra } },
  );
}

/** Each opening (a look or a use) counts against the client's IP. */
function limitOpenings(services: Services, ip: string) {
  const verdict = services.limits.openingsPerIp.hit(ip);
  if (verdict.ok) return null;
  services.audit.record("rate-limited", { ip, reason: "link-openings-per-ip" });
  return problemResponse("rate-limited", undefined, { "Retry-After": String(verdict.retryAfterSeconds) });
}

/** GET only shows who would sign in: mail scanners that prefetch links must not use them. */
export async function loader({ request, context }: LoaderFunctionArgs) {
  const services = getServices(context.app);
  const limited = limitOpenings(services, context.clientIp);
  if (limited) return limited;
  const token = new URL(request.url).searchParams.get("token") ?? "";
  const linkSession = await services.linkCookie.getSession(request.headers.get("Cookie"));
  const cookieLink = linkSession.get("auth:magiclink");
  try {
    const { payload, sameBrowser } = await services.links.inspect(
      token,
      typeof cookieLink === "string" ? cookieLink : undefined,
    );
    const seen = services.linkUses.peek(payload.e, payload);
    if (seen !== "ok") return problemResponse(seen, payload.e);
    if (!sameBrowser) return problemResponse("other-browser", payload.e);
    return json({ problem: null, email: payload.e }, { headers: LINK_PAGE_HEADERS });
  } catch (error) {
    if (isLinkError(error)) return problemResponse(error.problem, error.email);
    throw error;
  }
}

export async function action({ request, context }: ActionFunctionArgs) {
  const services = getServices(context.app);
  const limited = limitOpenings(services, context.clientIp);
  if (limited) return limited;
  const { config } = services.ctx;
  // the strategy treats POST as "send a link"; using one is its GET path
  const asGet = new Request(request.url, { method: "GET", headers: { Cookie: request.headers.get("Cookie") ?? "" } });
  try {
    const { user, redirectTo } = await services.emailLink.authenticate("email-link", asGet);
    const { setCookie, session } = await services.auth.signIn(user, request, "email");
    services.audit.record("sign-in", {
      uid: user.id,
      method: "email",
      ip: context.clientIp,
      session: session.sid.slice(0, 8),
    });
    const headers = new Headers(LINK_PAGE_HEADERS);
    headers.append("Set-Cookie", setCookie);
    headers.append("Set-Cookie", await services.linkCookie.destroySession(await services.linkCookie.getSession()));
    return redirect(safeRedirect(redirectTo, config.appUrl), { headers });
  } catch (error) {
    if (isLinkError(error)) {
      services.audit.record("refused", { email: error.email, ip: context.clientIp, reason: `link-${error.problem}` });
      return problemResponse(error.problem, error.email);
    }
    throw error;
  }
}

const TEXT: Record<Problem["problem"], { title: string; body: string }> = {
  "rate-limited": {
    title: "Too many attempts",
    body: "Too many sign-in links were opened from your network in a short time. Please wait a few minutes and try again.",
  },
  invalid: { title: "This link does not work", body: "The link is incomplete or was changed. Request a new one." },
  expired: { title: "This link has expired", body: "Sign-in links work for a short time only. Request a new one." },
  used: {
    title: "This link was already used",
    body: "Each sign-in link works once. Request a new one to sign in again.",
  },
  superseded: {
    title: "A newer link was used",
    body: "A more recent sign-in link for this address has been used, so this older one no longer works. Request a new one.",
  },
  "other-browser": {
    title: "Open the link in the browser where you asked for it",
    body: "For your safety, a sign-in link only works in the browser that requested it. Open the email on that device and browser, or request a new link here to sign in in this browser.",
  },
  "issuer-unreachable": {
    title: "We cannot check this link right now",
    body: "The server that sent this link is not reachable at the moment, so we cannot make sure it is used only once. Request a new link.",
  },
};

export default function EmailCallback() {
  const shown = useLoaderData<typeof loader>();
  const acted = useActionData<typeof action>();
  const state = acted ?? shown;
  if (state.problem) {
    const text = TEXT[state.problem];
    return (
      <main>
        <div className="card" data-problem={state.problem}>
          <h1>{text.title}</h1>
          <p>{text.body}</p>
          <Form method="post" action="/login" className="row">
            {state.email && <input type="hidden" name="email" value={state.email} />}
            {state.email ? (
              <button type="submit">Send a new link to {state.email}</button>
            ) : (
              <Link className="button" to="/login">
                Request a new link
              </Link>
            )}
          </Form>
        </div>
      </main>
    );
  }
  return (
    <main>
      <div className="card">
        <h1>Sign in as {state.email}?</h1>
        <p>Confirm to finish signing in on this device.</p>
        <Form method="post" className="row">
          <button type="submit">Sign in as {state.email}</button>
          <Link to="/login">Not you?</Link>
        </Form>
      </div>
    </main>
  );
}
