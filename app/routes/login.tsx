import type { ActionFunctionArgs, HeadersFunction, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json } from "@remix-run/node";
import { Form, Link, useActionData, useLoaderData, useNavigation } from "@remix-run/react";
import { useEffect, useRef, useState } from "react";
import { pageTitle, rootOf, useT, type MessageId, type Said } from "#app/lib/i18n/intl.ts";
import { autofillAvailable, PasskeyProblem, signInWithPasskey } from "#app/lib/sign-in/passkey/client.ts";
import { limitLinkRequests, requestLink } from "#app/lib/sign-in/email-link/request.server.ts";
import { optionalUser } from "#app/lib/auth/index.server.ts";
import { getServices } from "#app/lib/services.server.ts";
import { getOpenIdProvider } from "#app/lib/provider/index.server.ts";
import { normaliseEmail, safeRedirect } from "#app/lib/validation.server.ts";

/** A refused request's Retry-After reaches the page too, not only data requests. */
export const headers: HeadersFunction = ({ actionHeaders }) => {
  const retryAfter = actionHeaders.get("Retry-After");
  const headers: Record<string, string> = {};
  if (retryAfter) headers["Retry-After"] = retryAfter;
  return headers;
};

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(rootOf(matches), "login.title") }];

export async function loader({ request, context }: LoaderFunctionArgs) {
  const services = getServices(context.app);
  const url = new URL(request.url);
  const signedIn = await optionalUser(request, context);
  const redirectTo = safeRedirect(url.searchParams.get("redirectTo"), context.app.config);
  return json(
    {
      redirectTo,
      // signing in for an app (Sign in with PwdlessGs): name it
      forApp: getOpenIdProvider(context.app).appForRedirect(redirectTo),
      email: (url.searchParams.get("email") ?? "").slice(0, 254),
      signedOut: url.searchParams.get("signedOut"),
      deleted: url.searchParams.has("deleted"),
      refused: ["disabled", "signup"].includes(url.searchParams.get("refused") ?? "")
        ? url.searchParams.get("refused")
        : null,
      signedInAs: signedIn?.user.email ?? null,
      providers: services.methods.shownAs("provider-button").map((m) => ({ id: m.id, name: m.provider ?? m.label })),
    },
    { headers: { "Cache-Control": "no-store" } },
  );
}

export async function action({ request, context }: ActionFunctionArgs) {
  const services = getServices(context.app);
  const limited = limitLinkRequests(services, "page", context.clientIp);
  if (limited) return limited;
  let form: FormData;
  try {
    form = await request.formData();
  } catch {
    return json({ error: { id: "login.error.unreadable" } as Said, email: "" }, { status: 400 });
  }
  const result = normaliseEmail(form.get("email"));
  if (!result.ok) {
    const typed = typeof form.get("email") === "string" ? String(form.get("email")).slice(0, 254) : "";
    const error: Said = { id: `email.error.${result.problem}` as MessageId, values: { max: 254 } };
    return json({ error, email: typed }, { status: 400 });
  }
  const redirectTo = safeRedirect(form.get("redirectTo"), context.app.config);
  return requestLink(services.linkRequests, request, "page", context.clientIp, result.email, redirectTo);
}

export default function Login() {
  const t = useT();
  const { redirectTo, forApp, email, signedOut, deleted, refused, signedInAs, providers } =
    useLoaderData<typeof loader>();
  const failed = useActionData<{ error: Said; email: string }>();
  const busy = useNavigation().state === "submitting";
  const [passkeyProblem, setPasskeyProblem] = useState<MessageId | null>(null);
  const emailField = useRef<HTMLInputElement>(null);

  // the address is what almost everyone types first: focus it, unless the person is signed in already
  useEffect(() => {
    if (!signedInAs) emailField.current?.focus();
  }, [signedInAs]);

  // passkey autofill: the address field offers this site's passkeys; picking one signs in
  useEffect(() => {
    let live = true;
    void autofillAvailable().then(async (available) => {
      if (!available || !live) return;
      try {
        window.location.assign(await signInWithPasskey(redirectTo, true));
      } catch {
        // dismissed, or superseded by the button: the email form still works
      }
    });
    return () => {
      live = false;
    };
  }, [redirectTo]);

  async function passkeyButton() {
    setPasskeyProblem(null);
    try {
      window.location.assign(await signInWithPasskey(redirectTo));
    } catch (error) {
      setPasskeyProblem(error instanceof PasskeyProblem ? error.id : "passkey.failed");
    }
  }
  return (
    <main>
      {signedOut && (
        <p className="notice" role="status">
          {t(signedOut === "everywhere" ? "login.signedOutEverywhere" : "login.signedOut")}
        </p>
      )}
      {deleted && (
        <p className="notice" role="status">
          {t("login.deleted")}
        </p>
      )}
      {refused && (
        <p className="error" role="alert">
          {t(refused === "disabled" ? "login.refused.disabled" : "login.refused.signup")}
        </p>
      )}
      <div className="card">
        <h1>{t("login.title")}</h1>
        {forApp && <p data-testid="sign-in-for-app">{t("login.forApp", { app: forApp })}</p>}
        {signedInAs && (
          <p className="muted">
            {t("login.alreadySignedIn", { email: signedInAs })} <Link to="/account">{t("index.goToAccount")}</Link>
          </p>
        )}
        <Form method="post" noValidate>
          <input type="hidden" name="redirectTo" value={redirectTo} />
          <label htmlFor="email">{t("login.email")}</label>
          <input
            id="email"
            ref={emailField}
            name="email"
            type="email"
            autoComplete="email webauthn"
            autoCapitalize="none"
            spellCheck={false}
            required
            defaultValue={failed?.email ?? email}
            aria-invalid={failed?.error ? true : undefined}
            aria-describedby={failed?.error ? "email-error" : undefined}
          />
          {failed?.error && (
            <p id="email-error" className="error" role="alert">
              {t(failed.error.id, failed.error.values)}
            </p>
          )}
          <div className="row">
            <button type="submit" disabled={busy}>
              {busy ? t("login.sending") : t("login.emailButton")}
            </button>
          </div>
        </Form>
        <div className="row">
          <button type="button" className="secondary" onClick={() => void passkeyButton()}>
            {t("login.passkeyButton")}
          </button>
        </div>
        {passkeyProblem && (
          <p className="error" role="alert" data-testid="passkey-problem">
            {t(passkeyProblem)}
          </p>
        )}
        {providers.length > 0 && (
          <div className="providers">
            <p className="muted">{t("login.or")}</p>
            {providers.map((p) => (
              // a document POST: the answer is a redirect to the provider's site
              <Form key={p.id} method="post" action={`/auth/${p.id}`} reloadDocument className="row">
                <input type="hidden" name="redirectTo" value={redirectTo} />
                <button type="submit" className="secondary">
                  {t("login.providerButton", { provider: p.name })}
                </button>
              </Form>
            ))}
          </div>
        )}
      </div>
    </main>
  );
}
