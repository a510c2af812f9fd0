import { apiError } from "#app/lib/http.server.ts";

export async function loader() {
  return apiError(404, "not_found", "No such API endpoint.");
}

export async function action() {
  return apiError(404, "not_found", "No such API endpoint.");
}
