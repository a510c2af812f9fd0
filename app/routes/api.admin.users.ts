import type { LoaderFunctionArgs } from "@remix-run/node";
import { json } from "@remix-run/node";
import { adminApi, MAX_PAGE } from "#app/lib/admin/admin.server.ts";
import { apiError, NO_STORE } from "#app/lib/http.server.ts";
import { getServices } from "#app/lib/services.server.ts";

/** GET /api/admin/users?query=&limit=&cursor=: users by address prefix (or one by id), a page at a time. */
export async function loader({ request, context }: LoaderFunctionArgs) {
  const { admin } = getServices(context.app);
  return adminApi(admin, request, (by) => {
    const url = new URL(request.url);
    const query = (url.searchParams.get("query") ?? "").slice(0, 254);
    const rawLimit = url.searchParams.get("limit");
    const limit = rawLimit === null ? 50 : Number(rawLimit);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
      return apiError(400, "invalid_request", `limit must be a whole number from 1 to ${MAX_PAGE}.`);
    }
    const page = admin.search(query, limit, url.searchParams.get("cursor") ?? undefined);
    admin.noteRead(by, "search");
    if (!page.indexReady && page.users.length < limit) {
      return apiError(503, "server_error", "The address index is still being built; try again in a few seconds.", {
        "Retry-After": "2",
      });
    }
    return json({ users: page.users, nextCursor: page.nextCursor }, { headers: NO_STORE });
  });
}
