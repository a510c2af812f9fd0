import type { ActionFunctionArgs } from "@remix-run/node";
import { apiAnswers, toResponse } from "~/lib/api-answers.server";
import { apiError } from "~/lib/http.server";

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
  return toResponse(await apiAnswers(context.app).refresh(request));
}
