import type { ActionFunctionArgs } from "@remix-run/node";
import { adminUserAct, adminWrongMethod } from "#app/lib/admin/admin.server.ts";
import { getServices } from "#app/lib/services.server.ts";

export const loader = () => adminWrongMethod("POST");

/** POST /api/admin/users/:id/disable: no sign-in by any method, and every session ends on every node. */
export async function action({ request, params, context }: ActionFunctionArgs) {
  const { admin } = getServices(context.app);
  return adminUserAct(admin, request, "POST", (by) => {
    const user = admin.disable(params.id ?? "", by);
    return user && { id: user.id, disabled: true };
  });
}
