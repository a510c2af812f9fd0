import type { ActionFunctionArgs, HeadersFunction, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json } from "@remix-run/node";
import { Form, Link, useActionData, useLoaderData, useNavigation } from "@remix-run/react";
import { useEffect, useState } from "react";
import { autofillAvailable, signInWithPasskey } from "#app/lib/sign-in/passkey/client.ts";
import { limitLinkRequests, requestLink } from "#app/lib/sign-in/email-link/request.server.ts";
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

export const meta: MetaFunction = () => [{ title: "Sign in · PwdlessGs" }];

export async function loader({ request, context }: LoaderFunctionArgs) {
  const services = getServices(context.app);
  const url = new URL(request.url);
  const signedIn = await services.auth.fromCookie(request);
  const redirectTo = safeRedirect(url.searchParams.get("redirectTo"), context.app.config.appUrl);
  return json(
    {
      redirectTo,
      // signing in for an app (Sign in with PwdlessGs): name it
      forApp: getOpenIdProvider(context.app).appForRedirect(redirectTo),
      email: (url.searchParams.get("email") ?? "").slice(0, 254),
      signedOut: url.searchParams.has("signedOut"),
      signedInAs: signedIn?.user.email ?? null,
      emailLabel: services.methods.get("email").label,
      passkeyLabel: services.methods.get("passkey").label,
      providers: services.methods.shownAs("provider-button").map((m) => ({ id: m.id, label: m.label })),
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
    return json({ error: "The form could not be read. Please try again.", email: "" }, { status: 400 });
  }
  const result = normaliseEmail(form.get("email"));
  if (!result.ok) {
    const typed = typeof form.get("email") === "string" ? String(form.get("email")).slice(0, 254) : "";
    return json({ error: result.message, email: typed }, { status: 400 });
  }
  const redirectTo = safeRedirect(form.get("redirectTo"), context.app.config.appUrl);
  return requestLink(services.linkRequests, request, "page", context.clientIp, result.email, redirectTo);
}

export default function Login() {
  const { redirectTo, forApp, email, signedOut, signedInAs, emailLabel, passkeyLabel, providers } =
    useLoaderData<typeof loader>();
  const failed = useActionData<typeof action>();
  const busy = useNavigation().state === "submitting";
  const [passkeyProblem, setPasskeyProblem] = useState<string | null>(null);

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
      setPasskeyProblem(error instanceof Error ? error.message : "The passkey did not work.");
    }
  }
  return (
    <main>
      {signedOut && <p className="notice">You are signed out.</p>}
      <div className="card">
        <h1>Sign in</h1>
        {forApp && <p data-testid="sign-in-for-app">to continue to {forApp}</p>}
        {signedInAs && (
          <p className="muted">
            You are already signed in as {signedInAs}. <Link to="/account">Go to your account</Link>.
          </p>
        )}
        <Form method="post" noValidate>
          <input type="hidden" name="redirectTo" value={redirectTo} />
          <label htmlFor="email">Email address</label>
          <input
            id="email"
            name="email"
            type="email"
            autoComplete="email webauthn"
            required
            defaultValue={failed?.email ?? email}
            aria-invalid={failed?.error ? true : undefined}
            aria-describedby={failed?.error ? "email-error" : undefined}
          />
          {failed?.error && (
            <p id="email-error" className="error" role="alert">
              {failed.error}
            </p>
          )}
          <div className="row">
            <button type="submit" disabled={busy}>
              {busy ? "Sending…" : emailLabel}
            </button>
          </div>
        </Form>
        <div className="row">
          <button type="button" className="secondary" onClick={() => void passkeyButton()}>
            {passkeyLabel}
          </button>
        </div>
        {passkeyProblem && (
          <p className="error" role="alert" data-testid="passkey-problem">
            {passkeyProblem}
          </p>
        )}
        {providers.length > 0 && (
          <div className="providers">
            <p className="muted">Or sign in with an account you already have:</p>
            {providers.map((p) => (
              // a document POST: the answer is a redirect to the provider's site
              <Form key={p.id} method="post" action={`/auth/${p.id}`} reloadDocument className="row">
                <input type="hidden" name="redirectTo" value={redirectTo} />
                <button type="submit" className="secondary">
                  {p.label}
                </button>
              </Form>
            ))}
          </div>
        )}
      </div>
    </main>
  );
}
