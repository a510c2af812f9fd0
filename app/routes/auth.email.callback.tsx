import type { ActionFunctionArgs, HeadersFunction, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json } from "@remix-run/node";
import { Form, Link, useActionData, useLoaderData } from "@remix-run/react";
import {
  isLinkError,
  LINK_PROBLEM_STATUS,
  LINK_TOKEN_KEY,
  type LinkProblem,
} from "#app/lib/sign-in/email-link/strategy.server.ts";
import { finishSignIn } from "#app/lib/sign-in/finish.server.ts";
import { getServices, type Services } from "#app/lib/services.server.ts";
import { clientKey } from "#app/lib/abuse/client-key.server.ts";

export const meta: MetaFunction = () => [{ title: "Sign in · PwdlessGs" }];

// the token is in this page's URL: never send it on as a Referer, never cache the page
const LINK_PAGE_HEADERS = { "Cache-Control": "no-store", "Referrer-Policy": "no-referrer" };
export const headers: HeadersFunction = ({ loaderHeaders, actionHeaders }) => {
  const retryAfter = actionHeaders.get("Retry-After") ?? loaderHeaders.get("Retry-After");
  return retryAfter ? { ...LINK_PAGE_HEADERS, "Retry-After": retryAfter } : LINK_PAGE_HEADERS;
};

type Problem = { problem: LinkProblem | "rate-limited"; email: string | null };
/** what the page shows: a problem, "Sign in as …?", or (asked for in another browser) the code */
type LinkPage = { problem: Problem["problem"] | null; email: string | null; code: string | null };

const STATUS: Record<Problem["problem"], number> = { ...LINK_PROBLEM_STATUS, "rate-limited": 429 };

function problemResponse(problem: Problem["problem"], email: string | undefined, extra: HeadersInit = {}) {
  return json<LinkPage>(
    { problem, email: email ?? null, code: null },
    { status: STATUS[problem], headers: { ...LINK_PAGE_HEADERS, ...extra } },
  );
}

/** Each opening (a look or a use) counts against the client's IP. */
function limitOpenings(services: Services, ip: string) {
  const verdict = services.limits.openingsPerIp.hit(clientKey(ip));
  if (verdict.ok) return null;
  services.audit.record("rate-limited", { ip, reason: "link-openings-per-ip" });
  return problemResponse("rate-limited", undefined, { "Retry-After": String(verdict.retryAfterSeconds) });
}

/** The link as this node sees it, without using it: a problem, or who it would sign in. */
async function look(services: Services, request: Request) {
  const token = new URL(request.url).searchParams.get("token") ?? "";
  const linkSession = await services.linkCookie.getSession(request.headers.get("Cookie"));
  const cookieToken = linkSession.get(LINK_TOKEN_KEY);
  const { payload, sameBrowser } = await services.links.inspect(
    token,
    typeof cookieToken === "string" ? cookieToken : "",
  );
  const seen = services.linkUses.peek(payload.e, payload);
  return { payload, problem: seen !== "ok" ? seen : sameBrowser ? null : ("other-browser" as const) };
}

/** GET only shows who would sign in: mail scanners that prefetch links must not use them. */
export async function loader({ request, context }: LoaderFunctionArgs) {
  const services = getServices(context.app);
  const limited = limitOpenings(services, context.clientIp);
  if (limited) return limited;
  try {
    const { payload, problem } = await look(services, request);
    if (problem) return problemResponse(problem, payload.e);
    return json<LinkPage>({ problem: null, email: payload.e, code: null }, { headers: LINK_PAGE_HEADERS });
  } catch (error) {
    if (isLinkError(error)) return problemResponse(error.problem, error.email);
    throw error;
  }
}

export async function action({ request, context }: ActionFunctionArgs) {
  const services = getServices(context.app);
  const limited = limitOpenings(services, context.clientIp);
  if (limited) return limited;
  // read from a copy: the strategy is handed the request itself
  const form = await request
    .clone()
    .formData()
    .catch(() => new FormData());
  try {
    if (form.get("intent") === "show-code") {
      // another browser: only a request holding the (unused) link sees its code, and only once asked
      const { payload, problem } = await look(services, request);
      if (problem && problem !== "other-browser") return problemResponse(problem, payload.e);
      services.audit.record("code-shown", { email: payload.e, ip: context.clientIp });
      return json<LinkPage>({ problem: null, email: payload.e, code: payload.k }, { headers: LINK_PAGE_HEADERS });
    }
    const { email, redirectTo, release } = await services.emailLink.authenticate("email-link", request);
    const headers = new Headers(LINK_PAGE_HEADERS);
    headers.append("Set-Cookie", await services.linkCookie.destroySession(await services.linkCookie.getSession()));
    return await finishSignIn(services.finish, request, {
      method: services.methods.get("email"),
      who: { email },
      ip: context.clientIp,
      answer: { to: "page", redirectTo },
      headers,
      release,
    });
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
    body: "For your safety, a sign-in link only works in the browser that requested it. You can finish there with a code: ask for it here and type it on the “Check your email” page of that browser. Or request a new link to sign in in this browser.",
  },
  "issuer-unreachable": {
    title: "We cannot check this link right now",
    body: "The server that sent this link, or the store the servers share, is not reachable at the moment, so we cannot make sure it is used only once. Try again in a moment, or request a new link.",
  },
};

export default function EmailCallback() {
  const shown = useLoaderData<LinkPage>();
  const acted = useActionData<LinkPage>();
  const state = acted ?? shown;
  if (state.code) {
    return (
      <main>
        <div className="card">
          <h1>Type this code in the browser where you asked</h1>
          <p>On the “Check your email” page of the browser where you asked to sign in as {state.email}, type:</p>
          <p className="code" data-testid="shown-code">
            {state.code}
          </p>
          <p className="muted">The code works once, like the link; using it there uses up this link too.</p>
        </div>
      </main>
    );
  }
  if (state.problem) {
    const text = TEXT[state.problem];
    return (
      <main>
        <div className="card" data-problem={state.problem}>
          <h1>{text.title}</h1>
          <p>{text.body}</p>
          {state.problem === "other-browser" && (
            <Form method="post" className="row">
              <button type="submit" name="intent" value="show-code">
                Show the code for the other browser
              </button>
            </Form>
          )}
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
