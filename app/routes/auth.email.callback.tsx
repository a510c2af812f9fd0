import type { ActionFunctionArgs, HeadersFunction, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json } from "@remix-run/node";
import { Form, Link, useActionData, useLoaderData } from "@remix-run/react";
import {
  isLinkError,
  LINK_PROBLEM_STATUS,
  LINK_TOKEN_KEY,
  type LinkError,
  type LinkProblem,
} from "#app/lib/sign-in/email-link/strategy.server.ts";
import { finishSignIn } from "#app/lib/sign-in/finish.server.ts";
import { getServices, type Services } from "#app/lib/services.server.ts";
import { clientKey } from "#app/lib/abuse/client-key.server.ts";
import { pageTitle, rootOf, useT } from "#app/lib/i18n/intl.ts";

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(rootOf(matches), "login.title") }];

// the token is in this page's URL: never send it on as a Referer, never cache the page
const LINK_PAGE_HEADERS = { "Cache-Control": "no-store", "Referrer-Policy": "no-referrer" };
export const headers: HeadersFunction = ({ loaderHeaders, actionHeaders }) => {
  const retryAfter = actionHeaders.get("Retry-After") ?? loaderHeaders.get("Retry-After");
  return retryAfter ? { ...LINK_PAGE_HEADERS, "Retry-After": retryAfter } : LINK_PAGE_HEADERS;
};

type Problem = { problem: LinkProblem | "rate-limited"; email: string | null };
/** what the page shows: a problem, "Sign in as …?", or (asked for in another browser) the code */
type LinkPage = {
  problem: Problem["problem"] | null;
  email: string | null;
  code: string | null;
  /** rate-limited: when to try again */
  minutes?: number;
};

const STATUS: Record<Problem["problem"], number> = { ...LINK_PROBLEM_STATUS, "rate-limited": 429 };

function problemResponse(
  problem: Problem["problem"],
  email: string | undefined,
  extra: HeadersInit = {},
  minutes?: number,
) {
  return json<LinkPage>(
    { problem, email: email ?? null, code: null, minutes },
    { status: STATUS[problem], headers: { ...LINK_PAGE_HEADERS, ...extra } },
  );
}

/**
 * Each opening (a look or a use) counts against the client's IP; tokens that do not even open
 * (junk, scans, truncated copies) count in a budget of their own, so a bot on an office's shared
 * address cannot spend the openings of the people behind it who hold real links.
 */
function limitOpenings(services: Services, ip: string, junk: boolean) {
  const verdict = (junk ? services.limits.junkOpeningsPerIp : services.limits.openingsPerIp).hit(clientKey(ip));
  if (verdict.ok) return null;
  services.audit.record("rate-limited", { ip, reason: junk ? "junk-link-openings-per-ip" : "link-openings-per-ip" });
  const minutes = Math.max(1, Math.ceil(verdict.retryAfterSeconds / 60));
  return problemResponse("rate-limited", undefined, { "Retry-After": String(verdict.retryAfterSeconds) }, minutes);
}

/** Whether a request's token opens at all: only sealed tokens spend the openings honest people need. */
async function opens(services: Services, request: Request): Promise<boolean> {
  const token = new URL(request.url).searchParams.get("token") ?? "";
  try {
    await services.links.inspect(token, "");
    return true;
  } catch (error) {
    return !(isLinkError(error) && error.problem === "invalid");
  }
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
  // looked at first, counted after: a token that does not open counts in the junk budget
  let looked: Awaited<ReturnType<typeof look>> | undefined;
  let refused: LinkError | undefined;
  try {
    looked = await look(services, request);
  } catch (error) {
    if (!isLinkError(error)) throw error;
    refused = error;
  }
  const limited = limitOpenings(services, context.clientIp, refused?.problem === "invalid");
  if (limited) return limited;
  if (refused || !looked) return problemResponse(refused?.problem ?? "invalid", refused?.email);
  if (looked.problem) return problemResponse(looked.problem, looked.payload.e);
  return json<LinkPage>({ problem: null, email: looked.payload.e, code: null }, { headers: LINK_PAGE_HEADERS });
}

export async function action({ request, context }: ActionFunctionArgs) {
  const services = getServices(context.app);
  const limited = limitOpenings(services, context.clientIp, !(await opens(services, request)));
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

export default function EmailCallback() {
  const t = useT();
  const shown = useLoaderData<LinkPage>();
  const acted = useActionData<LinkPage>();
  const state = acted ?? shown;
  if (state.code) {
    return (
      <main>
        <div className="card">
          <h1>{t("link.code.title")}</h1>
          <p>{t("link.code.body", { email: state.email ?? "" })}</p>
          <p className="code" data-testid="shown-code">
            {state.code}
          </p>
          <p className="muted">{t("link.code.once")}</p>
        </div>
      </main>
    );
  }
  if (state.problem) {
    const problem = state.problem;
    return (
      <main>
        <div className="card" data-problem={problem}>
          <h1>{t(`link.problem.${problem}.title`)}</h1>
          <p>{t(`link.problem.${problem}.body`, { minutes: state.minutes ?? 10 })}</p>
          {problem === "other-browser" && (
            <Form method="post" className="row">
              <button type="submit" name="intent" value="show-code">
                {t("link.showCode")}
              </button>
            </Form>
          )}
          {/* too many openings: a new link would be refused the same way; waiting is the way on */}
          {problem !== "rate-limited" && (
            <Form method="post" action="/login" className="row">
              {state.email && <input type="hidden" name="email" value={state.email} />}
              {state.email ? (
                <button type="submit" className={problem === "other-browser" ? "secondary" : undefined}>
                  {t("link.newLinkTo", { email: state.email })}
                </button>
              ) : (
                <Link className="button" to="/login">
                  {t("link.newLink")}
                </Link>
              )}
            </Form>
          )}
        </div>
      </main>
    );
  }
  return (
    <main>
      <div className="card">
        <h1>{t("link.confirm.title", { email: state.email ?? "" })}</h1>
        <p>{t("link.confirm.body")}</p>
        <Form method="post" className="row">
          <button type="submit">{t("link.confirm.button", { email: state.email ?? "" })}</button>
          <Link to="/login">{t("link.confirm.notYou")}</Link>
        </Form>
      </div>
    </main>
  );
}
