import type { ActionFunctionArgs } from "@remix-run/node";
import { json } from "@remix-run/node";
import { apiError } from "#app/lib/http.server.ts";
import { getServices } from "#app/lib/services.server.ts";

export async function loader() {
  return apiError(405, "invalid_request", "Use POST to trade the session cookie for an access token.", {
    Allow: "POST",
  });
}

/** Trade a valid session cookie for a fresh access token. */
export async function action({ request, context }: ActionFunctionArgs) {
  if (request.method !== "POST") {
    return apiError(405, "invalid_request", "Use POST.", { Allow: "POST" });
  }
  const { auth } = getServices(context.app);
  const signedIn = await auth.fromCookie(request);
  if (!signedIn) return apiError(401, "unauthorized", "No valid session: sign in first.");
  const token = await auth.tokens.issue(signedIn.user.id, signedIn.session.sid);
  const headers = new Headers({ "Cache-Control": "no-store", Pragma: "no-cache" });
  if (signedIn.setCookie) headers.append("Set-Cookie", signedIn.setCookie);
  return json({ access_token: token, token_type: "Bearer", expires_in: auth.tokens.ttlSeconds }, { headers });
}
