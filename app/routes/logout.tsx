import type { ActionFunctionArgs } from "@remix-run/node";
import { redirect } from "@remix-run/node";
import { signOut } from "#app/lib/auth/index.server.ts";
import { getServices } from "#app/lib/services.server.ts";

export async function loader() {
  return redirect("/account");
}

/** Ends this session (or all of the user's with scope=everywhere) on every node; signOut clears the cookie. */
export async function action({ request, context }: ActionFunctionArgs) {
  const services = getServices(context.app);
  let scope: "this" | "everywhere" = "this";
  try {
    scope = (await request.formData()).get("scope") === "everywhere" ? "everywhere" : "this";
  } catch {
    // no readable form: end just this session
  }
  const signedOut = await signOut(request, context, scope);
  if (signedOut) services.audit.record("sign-out", { ...signedOut, scope, ip: context.clientIp });
  return redirect("/login?signedOut=1", { headers: { "Cache-Control": "no-store" } });
}
