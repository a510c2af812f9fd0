/** The access tokens' public keys (current and previous), for services that verify our tokens. */
import type { LoaderFunctionArgs } from "@remix-run/node";
import { json } from "@remix-run/node";
import { getServices } from "~/lib/services.server";

export async function loader({ context }: LoaderFunctionArgs) {
  const { auth } = getServices(context.app);
  // verifiers cache the set; a rotation publishes the new key before any token carries it
  return json(auth.tokens.jwks(), {
    headers: { "Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*" },
  });
}
