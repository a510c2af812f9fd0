import type { ActionFunctionArgs } from "@remix-run/node";
import { json } from "@remix-run/node";
import { z } from "zod";
import { apiError } from "#app/lib/http.server.ts";
import { localeOf } from "#app/lib/i18n/locales.ts";
import { optionalUser } from "#app/lib/auth/index.server.ts";
import { getServices } from "#app/lib/services.server.ts";
import { isPasskeyError } from "#app/lib/sign-in/passkey/passkey.server.ts";

const bodySchema = z.discriminatedUnion("step", [
  z.object({ step: z.literal("options") }),
  z.object({ step: z.literal("add"), state: z.unknown(), response: z.unknown(), name: z.unknown() }),
]);

export async function loader() {
  return apiError(405, "invalid_request", "Use POST.", { Allow: "POST" });
}

/** POST /account/passkeys: a signed-in person adds a passkey (options, then the authenticator's answer). */
export async function action({ request, context }: ActionFunctionArgs) {
  const services = getServices(context.app);
  const signedIn = await optionalUser(request, context);
  if (!signedIn) return apiError(401, "unauthorized", "Sign in first.");
  const { user } = signedIn;
  const body = bodySchema.safeParse(await request.json().catch(() => undefined));
  if (!body.success) return apiError(400, "invalid_request", 'Send JSON: {"step": "options"} or {"step": "add", …}.');
  if (body.data.step === "options") {
    return json(await services.passkeys.registrationOptions(user), { headers: { "Cache-Control": "no-store" } });
  }
  try {
    const { id, passkey } = await services.passkeys.register(user, body.data);
    services.audit.record("passkey-added", { uid: user.id, ip: context.clientIp, passkey: id.slice(0, 8) });
    services.lifecycle.noticePasskey(user, "added", passkey.name, localeOf(request));
    return json({ id, name: passkey.name }, { status: 201, headers: { "Cache-Control": "no-store" } });
  } catch (error) {
    if (!isPasskeyError(error)) throw error;
    services.audit.record("refused", {
      uid: user.id,
      ip: context.clientIp,
      method: "passkey",
      reason: `passkey-add-${error.problem}`,
      detail: error.detail,
    });
    return apiError(
      error.status,
      error.status === 403 ? "forbidden" : "invalid_request",
      "The passkey could not be added. Try again.",
      {},
      { problem: error.problem },
    );
  }
}
