import type { ActionFunctionArgs } from "@remix-run/node";
import { json } from "@remix-run/node";
import { z } from "zod";
import { apiError } from "#app/lib/http.server.ts";
import { limitLinkRequests, requestLink } from "#app/lib/sign-in/email-link/request.server.ts";
import { getServices } from "#app/lib/services.server.ts";
import { normaliseEmail, safeRedirect } from "#app/lib/validation.server.ts";

const bodySchema = z.object({ email: z.unknown(), redirectTo: z.unknown().optional() });

export async function loader() {
  return apiError(405, "invalid_request", 'Use POST with {"email": …}.', { Allow: "POST" });
}

/**
 * The JSON way to ask for a sign-in link (for apps that render their own form). The link is
 * bound to the caller's browser by the same cookie as the page's; the answer never says whether
 * the address has an account.
 */
export async function action({ request, context }: ActionFunctionArgs) {
  const services = getServices(context.app);
  const limited = limitLinkRequests(services, "api", context.clientIp);
  if (limited) return limited;
  let body: unknown;
  try {
    const type = request.headers.get("Content-Type") ?? "";
    body = type.includes("application/json") ? await request.json() : Object.fromEntries(await request.formData());
  } catch {
    return apiError(400, "invalid_request", 'Send JSON such as {"email": "ada@example.com"}.');
  }
  const parsed = bodySchema.safeParse(body);
  const email = normaliseEmail(parsed.success ? parsed.data.email : undefined);
  if (!email.ok) return apiError(400, "invalid_request", email.message);
  const redirectTo = safeRedirect(parsed.success ? parsed.data.redirectTo : undefined, context.app.config);
  const outcome = await requestLink(services.linkRequests, request, "api", context.clientIp, email.email, redirectTo);
  if (outcome.status !== 302) return outcome;
  const headers = new Headers({ "Cache-Control": "no-store" });
  for (const cookie of outcome.headers.getSetCookie()) headers.append("Set-Cookie", cookie);
  return json(
    { status: "sent", message: "If the address can receive mail, a sign-in link is on its way." },
    { status: 202, headers },
  );
}
