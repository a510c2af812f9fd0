import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json } from "@remix-run/node";
import { Form, Link, useActionData, useLoaderData } from "@remix-run/react";
import { ProviderProblem } from "#app/components/provider-problem.tsx";
import { pageTitle, rootOf, useT } from "#app/lib/i18n/intl.ts";
import { isOAuthError } from "#app/lib/sign-in/social/oauth-errors.server.ts";
import { refuseProviderSignIn } from "#app/lib/sign-in/social/provider-problem.server.ts";
import { getServices } from "#app/lib/services.server.ts";
import { safeRedirect } from "#app/lib/validation.server.ts";

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(rootOf(matches), "login.title") }];

function providerOr404(id: string | undefined, context: LoaderFunctionArgs["context"]) {
  const provider = getServices(context.app).social.find(id ?? "");
  if (!provider) throw new Response("Not found", { status: 404 });
  return provider;
}

/**
 * Starting needs a POST (it sets a cookie). A GET shows the button that does it; the loader also
 * runs after the action, so it must not redirect.
 */
export async function loader({ request, params, context }: LoaderFunctionArgs) {
  const provider = providerOr404(params.provider, context);
  const redirectTo = safeRedirect(new URL(request.url).searchParams.get("redirectTo"), context.app.config);
  return json({ provider: { id: provider.id, label: provider.label }, redirectTo });
}

/** POST /auth/:provider → the provider's sign-in page, with state, PKCE and (OIDC) nonce. */
export async function action({ request, params, context }: ActionFunctionArgs) {
  const provider = providerOr404(params.provider, context);
  const { social, audit } = getServices(context.app);
  const { config } = context.app;
  const form = await request.formData().catch(() => new FormData());
  const redirectTo = safeRedirect(form.get("redirectTo"), config);
  try {
    return await social.start(provider, redirectTo);
  } catch (error) {
    if (!isOAuthError(error)) throw error;
    return refuseProviderSignIn(audit, context.clientIp, provider, error, redirectTo, { "Cache-Control": "no-store" });
  }
}

export default function StartProviderSignIn() {
  const t = useT();
  const { provider, redirectTo } = useLoaderData<typeof loader>();
  const problem = useActionData<typeof action>();
  // the action either redirects to the provider or explains why it could not
  if (problem) return <ProviderProblem {...problem} />;
  return (
    <main>
      <div className="card">
        <h1>{t("login.providerButton", { provider: provider.label })}</h1>
        <Form method="post" reloadDocument className="row">
          <input type="hidden" name="redirectTo" value={redirectTo} />
          <button type="submit">{t("provider.continue", { provider: provider.label })}</button>
          <Link to="/login">{t("provider.otherWays")}</Link>
        </Form>
      </div>
    </main>
  );
}
