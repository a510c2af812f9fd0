import type { ActionFunctionArgs } from "@remix-run/node";
import { json } from "@remix-run/node";
import { adminApi, adminNotFound } from "#app/lib/admin/admin.server.ts";
import { apiError, NO_STORE } from "#app/lib/http.server.ts";
import { getServices } from "#app/lib/services.server.ts";

export async function loader() {
  return apiError(405, "invalid_request", "Use POST.", { Allow: "POST" });
}

/** POST /api/admin/users/:id/disable */
export async function action({ request, params, context }: ActionFunctionArgs) {
  const { admin } = getServices(context.app);
  if (request.method !== "POST") return apiError(405, "invalid_request", "Use POST.", { Allow: "POST" });
  return adminApi(admin, request, (by) => {
    const user = admin.disable(params.id ?? "", by);
    if (!user) return adminNotFound();
    return json({ id: user.id, disabled: true }, { headers: NO_STORE });
  });
}
