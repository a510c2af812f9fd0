import { Form, Link } from "@remix-run/react";
import { useT } from "#app/lib/i18n/intl.ts";
import type { OAuthProblem } from "#app/lib/sign-in/social/oauth-errors.server.ts";

export interface ProviderProblemData {
  problem: OAuthProblem;
  provider: { id: string; label: string };
  redirectTo: string;
}

/** Why a provider sign-in was refused, with a button that starts a new one. */
export function ProviderProblem({ problem, provider, redirectTo }: ProviderProblemData) {
  const t = useT();
  const values = { provider: provider.label };
  return (
    <main>
      <div className="card" data-problem={problem}>
        <h1>{t(`provider.problem.${problem}.title`, values)}</h1>
        <p>{t(`provider.problem.${problem}.body`, values)}</p>
        <Form method="post" action={`/auth/${provider.id}`} reloadDocument className="row">
          <input type="hidden" name="redirectTo" value={redirectTo} />
          <button type="submit">{t("provider.tryAgain")}</button>
          <Link to={`/login?redirectTo=${encodeURIComponent(redirectTo)}`}>{t("provider.otherWays")}</Link>
        </Form>
      </div>
    </main>
  );
}
