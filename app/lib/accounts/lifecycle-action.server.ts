/** The shape every account lifecycle page's action shares (address change, its confirmation, deletion). */
import { json, type ActionFunctionArgs } from "@remix-run/node";
import type { User } from "#app/lib/accounts/users.server.ts";
import { getServices, type Services } from "#app/lib/services.server.ts";
import { isLifecycleError } from "./lifecycle.server";
import { requireUser } from "#app/lib/auth/index.server.ts";

/**
 * The signed-in person (else the sign-in page), their form, and `step`'s answer; a refused step
 * (LifecycleError) answers the page's message with its status and leaves a `refused` audit line
 * whose reason is `<what>-<problem>`.
 */
export async function lifecycleAction(
  { request, context }: ActionFunctionArgs,
  what: "email-change" | "delete",
  step: (services: Services, user: User, form: FormData) => Promise<Response>,
) {
  const services = getServices(context.app);
  const { user } = await requireUser(request, context);
  const form = await request.formData().catch(() => new FormData());
  try {
    return await step(services, user, form);
  } catch (error) {
    if (!isLifecycleError(error)) throw error;
    services.audit.record("refused", { uid: user.id, ip: context.clientIp, reason: `${what}-${error.problem}` });
    return json({ error: error.message }, { status: error.status });
  }
}
