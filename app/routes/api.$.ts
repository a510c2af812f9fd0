import { apiError } from "~/lib/http.server";

export async function loader() {
  return apiError(404, "not_found", "No such API endpoint.");
}

export async function action() {
  return apiError(404, "not_found", "No such API endpoint.");
}
