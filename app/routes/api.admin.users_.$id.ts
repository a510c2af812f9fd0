import type { ActionFunctionArgs, LoaderFunctionArgs } from "@remix-run/node";
import { json } from "@remix-run/node";
import { adminApi, adminNotFound } from "#app/lib/admin/admin.server.ts";
import { apiError, NO_STORE } from "#app/lib/http.server.ts";
import { getServices } from "#app/lib/services.server.ts";

/** GET /api/admin/users/:id: the user, addresses, identities, passkeys, active sessions. */
export async function loader({ request, params, context }: LoaderFunctionArgs) {
  const { admin } = getServices(context.app);
  return adminApi(admin, request, (by) => {
    const user = admin.detail(params.id ?? "");
    if (!user) return adminNotFound();
    admin.noteRead(by, "user", user.id);
    return json(user, { headers: NO_STORE });
  });
}

/** DELETE /api/admin/users/:id: erase the user and every row about them, on every node. */
export async function action({ request, params, context }: ActionFunctionArgs) {
  const { admin } = getServices(context.app);
  if (request.method !== "DELETE")
    return apiError(405, "invalid_request", "Use DELETE to erase a user.", { Allow: "GET, DELETE" });
  return adminApi(admin, request, (by) => {
    const user = admin.erase(params.id ?? "", by);
    if (!user) return adminNotFound();
    return json({ id: user.id, erased: true }, { headers: NO_STORE });
  });
}
