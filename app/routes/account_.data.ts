import type { LoaderFunctionArgs } from "@remix-run/node";
import { getServices } from "#app/lib/services.server.ts";
import { requireUser } from "#app/lib/auth/index.server.ts";

/** GET /account/data: every row about the signed-in person, as a JSON download. */
export async function loader({ request, context }: LoaderFunctionArgs) {
  const services = getServices(context.app);
  const { user } = await requireUser(request, context);
  services.audit.record("data-exported", { uid: user.id, ip: context.clientIp });
  return new Response(JSON.stringify(services.lifecycle.exportData(user), null, 2), {
    headers: {
      "Content-Type": "application/json; charset=utf-8",
      "Content-Disposition": `attachment; filename="pwdless-gs-data-${user.id}.json"`,
      "Cache-Control": "no-store",
    },
  });
}
