import type { ActionFunctionArgs } from "@remix-run/node";
import { json } from "@remix-run/node";
import { adminApi, adminNotFound } from "#app/lib/admin/admin.server.ts";
import { apiError, NO_STORE } from "#app/lib/http.server.ts";
import { getServices } from "#app/lib/services.server.ts";

export async function loader() {
  return apiError(405, "invalid_request", "Use DELETE to end the user's sessions.", { Allow: "DELETE" });
}

/** DELETE /api/admin/users/:id/sessions: end every session of the user on every node. */
export async function action({ request, params, context }: ActionFunctionArgs) {
  const { admin } = getServices(context.app);
  if (request.method !== "DELETE") return apiError(405, "invalid_request", "Use DELETE.", { Allow: "DELETE" });
  return adminApi(admin, request, (by) => {
    const ended = admin.endSessions(params.id ?? "", by);
    if (ended === undefined) return adminNotFound();
    return json({ ended }, { headers: NO_STORE });
  });
}
