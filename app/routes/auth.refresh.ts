import type { ActionFunctionArgs } from "@remix-run/node";
import { apiAnswers, toResponse } from "#app/lib/session/api-answers.server.ts";
import { apiError } from "#app/lib/http.server.ts";

export async function loader() {
  return apiError(405, "invalid_request", "Use POST to trade the session cookie for an access token.", {
    Allow: "POST",
  });
}

/** Trade a valid session cookie for a fresh access token (in production server/ answers from Express, same function). */
export async function action({ request, context }: ActionFunctionArgs) {
  if (request.method !== "POST") {
    return apiError(405, "invalid_request", "Use POST.", { Allow: "POST" });
  }
  return toResponse(await apiAnswers(context.app).refresh(request, context.sessionHeaders));
}
