import type { ActionFunctionArgs, HeadersFunction, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json } from "@remix-run/node";
import { Form, Link, useActionData, useLoaderData, useNavigation } from "@remix-run/react";
import { getServices, type Services } from "#app/lib/services.server.ts";
import { signInWithCode } from "#app/lib/sign-in/code/sign-in.server.ts";
import { LINK_EMAIL_KEY, LINK_TOKEN_KEY } from "#app/lib/sign-in/email-link/strategy.server.ts";

export const meta: MetaFunction = () => [{ title: "Check your email · PwdlessGs" }];

export const headers: HeadersFunction = ({ actionHeaders }) => {
  const headers: Record<string, string> = { "Cache-Control": "no-store" };
  const retryAfter = actionHeaders.get("Retry-After");
  if (retryAfter) headers["Retry-After"] = retryAfter;
  return headers;
};

/** The sign-in this browser is waiting for, from its sealed link cookie. */
async function pending(services: Services, request: Request) {
  const session = await services.linkCookie.getSession(request.headers.get("Cookie"));
  const email = session.get(LINK_EMAIL_KEY);
  const token = session.get(LINK_TOKEN_KEY);
  let redirectTo = "/account";
  if (typeof token === "string") {
    try {
      redirectTo = (await services.links.inspect(token, token)).payload.f?.redirectTo ?? redirectTo;
    } catch {
      // an expired or foreign link: the code check refuses it in its own words
    }
  }
  return { email: typeof email === "string" ? email : null, redirectTo };
}

export async function loader({ request, context }: LoaderFunctionArgs) {
  const services = getServices(context.app);
  const { email } = await pending(services, request);
  return json(
    {
      email,
      minutes: Math.round(context.app.config.linkTtlMs / 60_000),
      outbox: Boolean(services.outbox),
    },
    { headers: { "Cache-Control": "no-store" } },
  );
}

/** The code from the email, typed in the browser that asked: signs in exactly as the link would. */
export async function action({ request, context }: ActionFunctionArgs) {
  const services = getServices(context.app);
  const form = await request.formData().catch(() => new FormData());
  const { email, redirectTo } = await pending(services, request);
  const headers = new Headers();
  headers.append("Set-Cookie", await services.linkCookie.destroySession(await services.linkCookie.getSession()));
  return signInWithCode(services, request, {
    email,
    askedFor: email,
    code: form.get("code"),
    ip: context.clientIp,
    answer: { to: "page", redirectTo, headers },
  });
}

export default function LinkSent() {
  const { email, minutes, outbox } = useLoaderData<typeof loader>();
  const refused = useActionData<{ error: string }>();
  const busy = useNavigation().state === "submitting";
  return (
    <main>
      <div className="card">
        <h1>Check your email</h1>
        <p>
          If <strong>{email ?? "that address"}</strong> can receive mail, a sign-in link and a code are on their way.
          Open the link, or type the code here. Either works once, for {minutes} minutes, in this browser.
        </p>
        {outbox && (
          <p className="notice">
            Local mode: no SMTP server is set, so the email is in the <Link to="/dev/mailbox">development mailbox</Link>
            .
          </p>
        )}
        {email && (
          <Form method="post" noValidate>
            <label htmlFor="code">Code from the email</label>
            <input
              id="code"
              name="code"
              type="text"
              inputMode="numeric"
              autoComplete="one-time-code"
              pattern="[0-9]{6}"
              maxLength={12}
              required
              aria-invalid={refused?.error ? true : undefined}
              aria-describedby={refused?.error ? "code-error" : undefined}
            />
            {refused?.error && (
              <p id="code-error" className="error" role="alert">
                {refused.error}
              </p>
            )}
            <div className="row">
              <button type="submit" disabled={busy}>
                {busy ? "Checking…" : "Sign in with the code"}
              </button>
            </div>
          </Form>
        )}
        {email && (
          <Form method="post" action="/login" className="row">
            <input type="hidden" name="email" value={email} />
            <button type="submit" className="secondary">
              Send another email
            </button>
            <Link to="/login">Use a different address</Link>
          </Form>
        )}
      </div>
    </main>
  );
}
