import { json } from "@remix-run/node";
import type { Services } from "./services.server";

/**
 * Hand a validated address to the email-link strategy. It seals the link into this browser's
 * link cookie and redirects to "check your email"; the answer is the same for every address.
 */
export async function requestLink(services: Services, request: Request, email: string, redirectTo: string): Promise<Response> {
  const { config, log } = services.ctx;
  const forStrategy = new Request(new URL("/login", config.appUrl), {
    method: "POST",
    headers: {
      "Content-Type": "application/x-www-form-urlencoded",
      Cookie: request.headers.get("Cookie") ?? "",
    },
    body: new URLSearchParams({ email, redirectTo }).toString(),
  });
  try {
    await services.emailLink.authenticate("email-link", forStrategy, { successRedirect: "/login/sent" });
  } catch (outcome) {
    if (outcome instanceof Response) return outcome;
    log.error("could not send a sign-in link", { error: outcome instanceof Error ? outcome.message : String(outcome) });
    return json(
      { error: "We could not send the email just now. Please try again in a minute.", email },
      { status: 503, headers: { "Retry-After": "60" } },
    );
  }
  throw new Error("the email-link strategy neither redirected nor failed");
}
