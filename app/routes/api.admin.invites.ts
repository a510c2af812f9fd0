import type { ActionFunctionArgs } from "@remix-run/node";
import { json } from "@remix-run/node";
import { adminApi } from "#app/lib/admin/admin.server.ts";
import { apiError, NO_STORE } from "#app/lib/http.server.ts";
import { DEFAULT_LOCALE, fromAcceptLanguage } from "#app/lib/i18n/locales.ts";
import { getServices } from "#app/lib/services.server.ts";
import { normaliseEmail } from "#app/lib/validation.server.ts";

export async function loader() {
  return apiError(405, "invalid_request", 'Use POST with {"email": …}.', { Allow: "POST" });
}

/**
 * POST /api/admin/invites {"email"}: this address may sign up whatever SIGNUP says (but closed and
 * blocked domains). The invitation is written in the language the request's Accept-Language names
 * (the invitee's, as the caller knows it: an administrator's own page language is not theirs), else
 * English; the locale cookie of an administrator's session is not used for it.
 */
export async function action({ request, context }: ActionFunctionArgs) {
  const { admin } = getServices(context.app);
  if (request.method !== "POST") return apiError(405, "invalid_request", "Use POST.", { Allow: "POST" });
  return adminApi(admin, request, async (by) => {
    const body = (await request.json().catch(() => undefined)) as { email?: unknown } | undefined;
    const email = normaliseEmail(body?.email);
    if (!email.ok)
      return apiError(400, "invalid_request", `Send JSON such as {"email": "ada@example.com"}: ${email.message}`);
    const invite = await admin.invite(
      email.email,
      by,
      fromAcceptLanguage(request.headers.get("Accept-Language")) ?? DEFAULT_LOCALE,
    );
    return json({ email: email.email, ...invite }, { status: 201, headers: NO_STORE });
  });
}
