import type { LoaderFunctionArgs } from "@remix-run/node";
import { json } from "@remix-run/node";
import { apiError } from "#app/lib/http.server.ts";
import { DUMPABLE_TABLES, dumpTable, requireClusterViewer } from "#app/lib/ops/cluster-view.server.ts";

export async function loader({ request, params, context }: LoaderFunctionArgs) {
  await requireClusterViewer(request, context, "json");
  const rows = dumpTable(context.app, params.name ?? "");
  if (!rows) return apiError(404, "not_found", `No such table. Tables: ${DUMPABLE_TABLES.join(", ")}.`);
  return json({ table: params.name, rows }, { headers: { "Cache-Control": "no-store" } });
}
