import type { HeadersFunction, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { useLoaderData } from "@remix-run/react";
import { ProviderProblem } from "#app/components/provider-problem.tsx";
import { pageTitle, rootOf } from "#app/lib/i18n/intl.ts";
import { isOAuthError } from "#app/lib/sign-in/social/oauth-errors.server.ts";
import { refuseProviderSignIn } from "#app/lib/sign-in/social/provider-problem.server.ts";
import { getServices } from "#app/lib/services.server.ts";
import { finishSignIn } from "#app/lib/sign-in/finish.server.ts";
import { safeRedirect } from "#app/lib/validation.server.ts";

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(rootOf(matches), "login.title") }];

// The code is in this page's URL: never cache the page, never send the URL on as a Referer. (The
// "Try again" POST then says `Origin: null`; the cross-site check goes by Sec-Fetch-Site first.)
const CALLBACK_HEADERS = { "Cache-Control": "no-store", "Referrer-Policy": "no-referrer" };
export const headers: HeadersFunction = () => CALLBACK_HEADERS;

/**
 * GET /auth/:provider/callback: the provider's answer. On success the same user, session cookie
 * and (through /auth/refresh) access token as an email link; otherwise a page saying why.
 */
export async function loader({ request, params, context }: LoaderFunctionArgs) {
  const services = getServices(context.app);
  const { config } = context.app;
  const provider = services.social.find(params.provider ?? "");
  if (!provider) throw new Response("Not found", { status: 404 });

  // the state cookie is for one answer only, whatever its outcome
  const headers = new Headers(CALLBACK_HEADERS);
  headers.append("Set-Cookie", await services.social.clearState());
  const redirectTo = safeRedirect(await services.social.pendingRedirectTo(request), config);
  try {
    const { identity } = await services.social.finish(provider, request);
    return await finishSignIn(services.finish, request, {
      method: services.methods.get(provider.id),
      who: { email: identity.email, identity: { provider: identity.provider, subject: identity.subject } },
      ip: context.clientIp,
      answer: { to: "page", redirectTo },
      headers,
    });
  } catch (error) {
    if (!isOAuthError(error)) throw error;
    return refuseProviderSignIn(services.audit, context.clientIp, provider, error, redirectTo, headers);
  }
}

export default function ProviderCallback() {
  return <ProviderProblem {...useLoaderData<typeof loader>()} />;
}
