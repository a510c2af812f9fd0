import type { ActionFunctionArgs } from "@remix-run/node";
import { json, redirect } from "@remix-run/node";
import { signOut } from "#app/lib/auth/index.server.ts";
import { getServices } from "#app/lib/services.server.ts";

export async function loader() {
  return redirect("/account");
}

/** An API client (JSON asked for or sent) gets JSON; a browser's form post gets the sign-in page. */
function wantsJson(request: Request): boolean {
  const accept = request.headers.get("Accept") ?? "";
  const type = request.headers.get("Content-Type") ?? "";
  return (accept.includes("application/json") && !accept.includes("text/html")) || type.includes("application/json");
}

/**
 * Ends this session (or all of the user's with scope=everywhere) on every node; signOut clears the
 * cookie. Browsers go to /login; API clients get `{"status":"signed_out","scope":…}` (the same
 * answer whether or not a session was there: signing out is idempotent).
 */
export async function action({ request, context }: ActionFunctionArgs) {
  const services = getServices(context.app);
  const asJson = wantsJson(request);
  let scope: "this" | "everywhere" = "this";
  try {
    const body: unknown = asJson ? await request.json() : Object.fromEntries((await request.formData()).entries());
    scope = (body as { scope?: unknown } | null)?.scope === "everywhere" ? "everywhere" : "this";
  } catch {
    // no readable body: end just this session
  }
  const signedOut = await signOut(request, context, scope);
  if (signedOut) services.audit.record("sign-out", { ...signedOut, scope, ip: context.clientIp });
  const headers = { "Cache-Control": "no-store" };
  if (asJson) return json({ status: "signed_out", scope, session: signedOut ? "ended" : "none" }, { headers });
  return redirect(scope === "everywhere" ? "/login?signedOut=everywhere" : "/login?signedOut=1", { headers });
}
