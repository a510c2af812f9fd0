import type { ActionFunctionArgs } from "@remix-run/node";
import { redirect } from "@remix-run/node";
import { requireUser } from "#app/lib/auth/index.server.ts";
import { getOpenIdProvider } from "#app/lib/provider/index.server.ts";

export async function loader() {
  return redirect("/account");
}

/** Take an app's access back ("Apps with access" on /account): its consent and every token it holds, on every node. */
export async function action({ request, context }: ActionFunctionArgs) {
  const { user } = await requireUser(request, context);
  const form = await request.formData().catch(() => new FormData());
  const clientId = String(form.get("clientId") ?? "").slice(0, 128);
  getOpenIdProvider(context.app).revokeApp(user, clientId, context.clientIp);
  return redirect("/account", { headers: { "Cache-Control": "no-store" } });
}
