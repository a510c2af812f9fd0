import type { ActionFunctionArgs, HeadersFunction, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json } from "@remix-run/node";
import { Form, Link, useActionData, useLoaderData, useNavigation } from "@remix-run/react";
import { useEffect, useRef } from "react";
import { pageTitle, rootOf, useT, type Said } from "#app/lib/i18n/intl.ts";
import { getServices, type Services } from "#app/lib/services.server.ts";
import { signInWithCode } from "#app/lib/sign-in/code/sign-in.server.ts";
import { LINK_EMAIL_KEY, LINK_TOKEN_KEY } from "#app/lib/sign-in/email-link/strategy.server.ts";

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(rootOf(matches), "sent.title") }];

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

/** The code field: digits only, and sent as soon as it holds six (typed, pasted or filled in by the phone). */
function CodeField({ invalid, busy }: { invalid: boolean; busy: boolean }) {
  const sent = useRef<string | null>(null);
  return (
    <input
      id="code"
      name="code"
      type="text"
      inputMode="numeric"
      autoComplete="one-time-code"
      pattern="[0-9]{6}"
      maxLength={12}
      required
      className="code-input"
      aria-invalid={invalid || undefined}
      aria-describedby={invalid ? "code-hint code-error" : "code-hint"}
      disabled={busy}
      onInput={(event) => {
        const field = event.currentTarget;
        const digits = field.value.replace(/\D/g, "").slice(0, 6);
        // once per value: a field left as it was (autofill firing twice) does not submit again
        if (digits.length < 6) sent.current = null;
        if (digits.length === 6 && digits !== sent.current && field.form) {
          sent.current = digits;
          field.value = digits;
          field.form.requestSubmit();
        }
      }}
    />
  );
}

export default function LinkSent() {
  const t = useT();
  const { email, minutes, outbox } = useLoaderData<typeof loader>();
  const refused = useActionData<{ error: Said; newEmail: boolean }>();
  const navigation = useNavigation();
  const busy = navigation.state === "submitting" && navigation.formAction === "/login/sent";
  const codeField = useRef<HTMLFormElement>(null);
  // after a refusal: an empty field, ready for the next try
  useEffect(() => {
    if (!refused || !codeField.current) return;
    const input = codeField.current.elements.namedItem("code");
    if (input instanceof HTMLInputElement) {
      input.value = "";
      input.focus();
    }
  }, [refused]);
  const offerCode = email && !refused?.newEmail;
  return (
    <main>
      <div className="card">
        <h1>{t("sent.title")}</h1>
        {email && <p>{t("sent.body", { email, minutes })}</p>}
        {email && outbox && (
          <p className="notice">
            {t("sent.outbox")} <Link to="/dev/mailbox">{t("sent.outboxLink")}</Link>
          </p>
        )}
        {refused?.error && (
          <p id="code-error" className="error" role="alert" data-testid="code-problem">
            {t(refused.error.id, refused.error.values)}
          </p>
        )}
        {offerCode && (
          <Form method="post" noValidate ref={codeField}>
            <label htmlFor="code">{t("sent.codeLabel")}</label>
            <p id="code-hint" className="muted small">
              {t("sent.codeHint")}
            </p>
            <CodeField invalid={Boolean(refused?.error)} busy={busy} />
            <div className="row">
              <button type="submit" disabled={busy}>
                {busy ? t("sent.checking") : t("sent.codeButton")}
              </button>
            </div>
          </Form>
        )}
        {email && (
          <Form method="post" action="/login" className="row">
            <input type="hidden" name="email" value={email} />
            <button type="submit" className={offerCode ? "secondary" : undefined}>
              {t("sent.sendAnother")}
            </button>
            <Link to="/login">{t("sent.differentAddress")}</Link>
          </Form>
        )}
        {!email && (
          <>
            <h2>{t("sent.noneWaiting.title")}</h2>
            <p>{t("sent.noneWaiting.body", { minutes })}</p>
            <Form method="post" action="/login" noValidate>
              <label htmlFor="email">{t("login.email")}</label>
              <input id="email" name="email" type="email" autoComplete="email" autoCapitalize="none" required />
              <div className="row">
                <button type="submit">{t("sent.newEmail")}</button>
              </div>
            </Form>
          </>
        )}
      </div>
    </main>
  );
}
