import type { ActionFunctionArgs } from "@remix-run/node";
import { redirect } from "@remix-run/node";
import { getServices } from "#app/lib/services.server.ts";

export async function loader() {
  return redirect("/account");
}

/** Ends this session (or all of the user's with scope=everywhere) on every node, and clears the cookie. */
export async function action({ request, context }: ActionFunctionArgs) {
  const services = getServices(context.app);
  let scope: "this" | "everywhere" = "this";
  try {
    scope = (await request.formData()).get("scope") === "everywhere" ? "everywhere" : "this";
  } catch {
    // no readable form: end just this session
  }
  const signedOut = await services.auth.signOutRequest(request, scope);
  if (signedOut) services.audit.record("sign-out", { ...signedOut, scope, ip: context.clientIp });
  return redirect("/login?signedOut=1", {
    headers: { "Set-Cookie": services.auth.clearCookie(), "Cache-Control": "no-store" },
  });
}
