import type { ActionFunctionArgs } from "@remix-run/node";
import { z } from "zod";
import { apiError } from "#app/lib/http.server.ts";
import { getServices } from "#app/lib/services.server.ts";
import { signInWithCode } from "#app/lib/sign-in/code/sign-in.server.ts";
import { LINK_EMAIL_KEY } from "#app/lib/sign-in/email-link/strategy.server.ts";
import { normaliseEmail } from "#app/lib/validation.server.ts";

const bodySchema = z.object({ email: z.unknown(), code: z.unknown() });

export async function loader() {
  return apiError(405, "invalid_request", 'Use POST with {"email": …, "code": …}.', { Allow: "POST" });
}

/**
 * POST /api/auth/email/code {"email","code"}: the code from the email, for clients with no browser
 * redirect (native apps, CLIs), with the link cookie POST /api/auth/email set (unless
 * LINK_SAME_BROWSER=false). Answers the session cookie and an access token as JSON.
 */
export async function action({ request, context }: ActionFunctionArgs) {
  const services = getServices(context.app);
  let body: unknown;
  try {
    body = await request.json();
  } catch {
    return apiError(400, "invalid_request", 'Send JSON such as {"email": "ada@example.com", "code": "123456"}.');
  }
  const parsed = bodySchema.safeParse(body);
  if (!parsed.success) return apiError(400, "invalid_request", 'Send a JSON object with "email" and "code".');
  const email = normaliseEmail(parsed.data.email);
  if (!email.ok) return apiError(400, "invalid_request", email.message);
  const linkSession = await services.linkCookie.getSession(request.headers.get("Cookie"));
  const askedFor = linkSession.get(LINK_EMAIL_KEY);
  return signInWithCode(services, request, {
    email: email.email,
    askedFor: typeof askedFor === "string" ? askedFor : null,
    code: parsed.data.code,
    ip: context.clientIp,
    answer: { to: "api" },
  });
}
