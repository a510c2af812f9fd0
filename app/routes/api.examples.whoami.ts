/**
 * Example (README, "Build your app on PwdlessGs"): an API route for a Bearer access token. Served
 * in local mode only; copy it into your own routes.
 */
import type { LoaderFunctionArgs } from "@remix-run/node";
import { json } from "@remix-run/node";
import { requireApiUser } from "#app/lib/auth/index.server.ts";

export async function loader({ request, context }: LoaderFunctionArgs) {
  // no valid token (or an expired one without the session's cookie): a 401 JSON answer
  const { user } = await requireApiUser(request, context);
  return json({ id: user.id, email: user.email });
}
