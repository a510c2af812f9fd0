import { Form } from "@remix-run/react";
import { RelativeTime } from "#app/components/relative-time.tsx";
import { useRich, useT, type MessageId } from "#app/lib/i18n/intl.ts";

/** One app that can sign the person in through PwdlessGs (OpenID provider), as /account lists it. */
export interface AppWithAccess {
  clientId: string;
  name: string;
  scopes: string[];
  firstParty: boolean;
  since: number;
}

const SCOPES: Record<string, MessageId> = {
  openid: "account.apps.scope.openid",
  email: "account.apps.scope.email",
  profile: "account.apps.scope.profile",
  offline_access: "account.apps.scope.offline_access",
};

/** "Apps with access" on /account: each app the person let in, and a button to take its access back. */
export function AppsWithAccess({ apps }: { apps: AppWithAccess[] }) {
  const t = useT();
  const rich = useRich();
  return (
    <section className="card" aria-labelledby="apps-heading">
      <h2 id="apps-heading">{t("account.apps")}</h2>
      {apps.length === 0 && <p className="muted">{t("account.apps.none")}</p>}
      {apps.length > 0 && (
        <ul className="items">
          {apps.map((app) => (
            <li key={app.clientId} data-testid="app-row" className="item">
              <div className="item-text">
                <strong>
                  {app.name} {app.firstParty && <span className="badge">{t("account.apps.firstParty")}</span>}
                </strong>
                <span className="muted">
                  {app.scopes.map((s) => (SCOPES[s] ? t(SCOPES[s]) : s)).join(", ")}
                  {" · "}
                  {rich("account.apps.since", { when: <RelativeTime at={app.since} /> })}
                </span>
              </div>
              <Form method="post" action="/account/apps">
                <input type="hidden" name="clientId" value={app.clientId} />
                <button type="submit" className="secondary small">
                  {t("account.apps.remove")}
                  <span className="visually-hidden"> {app.name}</span>
                </button>
              </Form>
            </li>
          ))}
        </ul>
      )}
      <p className="muted">{t("account.apps.explain")}</p>
    </section>
  );
}
