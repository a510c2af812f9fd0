import type { ActionFunctionArgs } from "@remix-run/node";
import { adminUserAct, adminWrongMethod } from "#app/lib/admin/admin.server.ts";
import { getServices } from "#app/lib/services.server.ts";

export const loader = () => adminWrongMethod("DELETE");

/** DELETE /api/admin/users/:id/sessions: end every session of the user on every node. */
export async function action({ request, params, context }: ActionFunctionArgs) {
  const { admin } = getServices(context.app);
  return adminUserAct(admin, request, "DELETE", (by) => {
    const ended = admin.endSessions(params.id ?? "", by);
    return ended === undefined ? undefined : { ended };
  });
}
