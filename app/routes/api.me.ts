import type { LoaderFunctionArgs } from "@remix-run/node";
import { apiAnswers, toResponse } from "#app/lib/session/api-answers.server.ts";

// In production server/ answers this path from Express with the same function (api-answers.server.ts).
export async function loader({ request, context }: LoaderFunctionArgs) {
  return toResponse(await apiAnswers(context.app).me(request, context.sessionHeaders));
}
