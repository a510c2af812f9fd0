import type { LoaderFunctionArgs } from "@remix-run/node";
import { json } from "@remix-run/node";
import { apiError } from "#app/lib/http.server.ts";
import { getServices } from "#app/lib/services.server.ts";

export async function loader({ request, context }: LoaderFunctionArgs) {
  const result = await getServices(context.app).auth.fromBearer(request);
  if (!result.ok) return apiError(result.status, result.error, result.message);
  const headers = new Headers({ "Cache-Control": "no-store" });
  if (result.refreshedToken) headers.set("X-Access-Token", result.refreshedToken);
  if (result.setCookie) headers.append("Set-Cookie", result.setCookie);
  return json({ id: result.user.id, email: result.user.email }, { headers });
}
