import type { LoaderFunctionArgs } from "@remix-run/node";
import { requireOutbox } from "#app/lib/ops/mailbox.server.ts";

/** The outbox as JSON (`?to=` for one address), serialised once per change of the outbox. */
export async function loader({ request, context }: LoaderFunctionArgs) {
  const to = new URL(request.url).searchParams.get("to") ?? undefined;
  return new Response(requireOutbox(context.app).json(to), {
    headers: { "Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store" },
  });
}
