import type { ActionFunctionArgs } from "@remix-run/node";
import { json } from "@remix-run/node";
import { z } from "zod";
import { isLifecycleError } from "#app/lib/accounts/lifecycle.server.ts";
import { apiError, NO_STORE } from "#app/lib/http.server.ts";
import { localeOf } from "#app/lib/i18n/locales.ts";
import { getServices } from "#app/lib/services.server.ts";
import { isPasskeyError } from "#app/lib/sign-in/passkey/passkey.server.ts";
import { optionalUser } from "#app/lib/auth/index.server.ts";

const bodySchema = z.discriminatedUnion("step", [
  z.object({ step: z.literal("options") }),
  z.object({ step: z.literal("delete"), state: z.unknown(), response: z.unknown() }),
]);

export async function loader() {
  return apiError(405, "invalid_request", 'Use POST with {"step": "options"} or {"step": "delete", …}.', {
    Allow: "POST",
  });
}

/**
 * POST /account/delete/passkey: delete the signed-in account, re-confirmed with one of its passkeys
 * instead of an emailed code. {"step":"options"} → WebAuthn request options for the person's own
 * passkeys (user verification required) and a sealed state; {"step":"delete","state","response"}
 * → the account is erased on every node, the cookie cleared, and where to go.
 */
export async function action({ request, context }: ActionFunctionArgs) {
  const services = getServices(context.app);
  const signedIn = await optionalUser(request, context);
  if (!signedIn) return apiError(401, "unauthorized", "Sign in first.");
  const { user } = signedIn;
  const perIp = services.limits.openingsPerIp.hit(context.clientIp);
  if (!perIp.ok) {
    services.audit.record("rate-limited", { uid: user.id, ip: context.clientIp, reason: "passkey-per-ip" });
    return apiError(429, "rate_limited", "Too many attempts from your network; wait a few minutes.", {
      "Retry-After": String(perIp.retryAfterSeconds),
    });
  }
  const body = bodySchema.safeParse(await request.json().catch(() => undefined));
  if (!body.success)
    return apiError(400, "invalid_request", 'Send JSON: {"step": "options"} or {"step": "delete", …}.');
  if (body.data.step === "options") {
    const options = await services.passkeys.reconfirmOptions(user);
    if (!options)
      return apiError(409, "invalid_request", "This account has no passkey: confirm with an emailed code instead.");
    return json(options, { headers: NO_STORE });
  }
  try {
    const proof = await services.passkeys.reconfirm(user, body.data);
    services.lifecycle.deleteWithProof(user, { passkey: proof }, localeOf(request));
    return json(
      { deleted: true, redirectTo: "/login?deleted=1" },
      { headers: { ...NO_STORE, "Set-Cookie": services.auth.clearCookie() } },
    );
  } catch (error) {
    if (!isPasskeyError(error) && !isLifecycleError(error)) throw error;
    services.audit.record("refused", {
      uid: user.id,
      ip: context.clientIp,
      method: "passkey",
      reason: `delete-passkey-${error.problem}`,
      ...(isPasskeyError(error) ? { detail: error.detail } : {}),
    });
    return apiError(
      error.status,
      error.status === 403 ? "forbidden" : "invalid_request",
      "The passkey did not confirm it is you: nothing was deleted. Try again, or confirm with an emailed code.",
    );
  }
}
