import type { ActionFunctionArgs } from "@remix-run/node";
import { json } from "@remix-run/node";
import { z } from "zod";
import { apiError } from "#app/lib/http.server.ts";
import { getServices } from "#app/lib/services.server.ts";
import { finishSignIn } from "#app/lib/sign-in/finish.server.ts";
import { isPasskeyError } from "#app/lib/sign-in/passkey/passkey.server.ts";

const bodySchema = z.discriminatedUnion("step", [
  z.object({ step: z.literal("options") }),
  z.object({ step: z.literal("verify"), state: z.unknown(), response: z.unknown(), redirectTo: z.unknown() }),
]);

export async function loader() {
  return apiError(405, "invalid_request", 'Use POST with {"step": "options"} or {"step": "verify", …}.', {
    Allow: "POST",
  });
}

/**
 * POST /auth/passkey: {"step":"options"} → WebAuthn request options and a sealed state;
 * {"step":"verify","state","response","redirectTo"} → the session cookie and where to go.
 */
export async function action({ request, context }: ActionFunctionArgs) {
  const services = getServices(context.app);
  const perIp = services.limits.openingsPerIp.hit(context.clientIp);
  if (!perIp.ok) {
    services.audit.record("rate-limited", { ip: context.clientIp, reason: "passkey-per-ip" });
    return apiError(429, "rate_limited", "Too many sign-in attempts from your network; wait a few minutes.", {
      "Retry-After": String(perIp.retryAfterSeconds),
    });
  }
  const body = bodySchema.safeParse(await request.json().catch(() => undefined));
  if (!body.success)
    return apiError(400, "invalid_request", 'Send JSON: {"step": "options"} or {"step": "verify", …}.');
  if (body.data.step === "options") {
    return json(await services.passkeys.signInOptions(), { headers: { "Cache-Control": "no-store" } });
  }
  try {
    const { user } = await services.passkeys.signIn(body.data);
    return await finishSignIn(services.finish, request, {
      method: services.methods.get("passkey"),
      who: { user },
      ip: context.clientIp,
      answer: { to: "script", redirectTo: body.data.redirectTo },
    });
  } catch (error) {
    if (!isPasskeyError(error)) throw error;
    services.audit.record("refused", {
      ip: context.clientIp,
      method: "passkey",
      reason: `passkey-${error.problem}`,
      detail: error.detail,
    });
    const message =
      error.problem === "unknown-credential"
        ? "This passkey is not registered here (it may have been removed). Sign in with your email instead."
        : "The passkey could not be checked. Try again, or sign in with your email.";
    return apiError(
      error.status,
      error.status === 403 ? "forbidden" : "invalid_request",
      message,
      {},
      {
        problem: error.problem,
      },
    );
  }
}
