import type { LoaderFunctionArgs } from "@remix-run/node";
import { json } from "@remix-run/node";
import { requireClusterViewer } from "#app/lib/ops/cluster-view.server.ts";

export async function loader({ request, context }: LoaderFunctionArgs) {
  await requireClusterViewer(request, context, "json");
  return json(context.app.cluster.status(), { headers: { "Cache-Control": "no-store" } });
}
