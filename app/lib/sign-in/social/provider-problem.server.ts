import { json } from "@remix-run/node";
import type { ProviderProblemData } from "#app/components/provider-problem.tsx";
import type { Audit } from "#app/lib/abuse/audit.server.ts";
import type { OAuthError } from "./oauth-errors.server";
import type { Provider } from "./providers.server";

/** A refused provider sign-in: one audit event, and the page that explains it with "Try again". */
export function refuseProviderSignIn(
  audit: Audit,
  ip: string,
  provider: Provider,
  error: OAuthError,
  redirectTo: string,
  headers: HeadersInit,
) {
  audit.record("refused", { ip, method: provider.id, reason: `${provider.id}-${error.problem}`, detail: error.detail });
  return json<ProviderProblemData>(
    { problem: error.problem, provider: { id: provider.id, label: provider.label }, redirectTo },
    { status: error.status, headers },
  );
}
