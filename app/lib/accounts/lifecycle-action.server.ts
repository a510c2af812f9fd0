/** The shape every account lifecycle page's action shares (address change, its confirmation, deletion). */
import { json, type ActionFunctionArgs } from "@remix-run/node";
import type { User } from "#app/lib/accounts/users.server.ts";
import type { Said } from "#app/lib/i18n/intl.ts";
import { localeOf, type Locale } from "#app/lib/i18n/locales.ts";
import { getServices, type Services } from "#app/lib/services.server.ts";
import { isLifecycleError } from "./lifecycle.server";
import { requireUser } from "#app/lib/auth/index.server.ts";

/**
 * The signed-in person (else the sign-in page), their form, the request's language (for the emails
 * the step sends), and `step`'s answer; a refused step (LifecycleError) answers the page with what
 * to say (`{ error: Said }`, in the page's language) and its status, and leaves a `refused` audit
 * line whose reason is `<what>-<problem>`.
 */
export async function lifecycleAction(
  { request, context }: ActionFunctionArgs,
  what: "email-change" | "delete",
  step: (services: Services, user: User, form: FormData, locale: Locale) => Promise<Response>,
): Promise<Response> {
  const services = getServices(context.app);
  const { user } = await requireUser(request, context);
  const form = await request.formData().catch(() => new FormData());
  try {
    return await step(services, user, form, localeOf(request));
  } catch (error) {
    if (!isLifecycleError(error)) throw error;
    services.audit.record("refused", { uid: user.id, ip: context.clientIp, reason: `${what}-${error.problem}` });
    return refusal(error.said, error.status);
  }
}

/** What a lifecycle page's action answers when it refuses: the page shows `error` in its language. */
export function refusal(error: Said, status: number): Response {
  return json({ error } satisfies LifecycleRefusal, { status, headers: { "Cache-Control": "no-store" } });
}

export type LifecycleRefusal = { error: Said };
