import { Form } from "@remix-run/react";

/** One app that can sign the person in through PwdlessGs (OpenID provider), as /account lists it. */
export interface AppWithAccess {
  clientId: string;
  name: string;
  scopes: string[];
  firstParty: boolean;
  since: number;
}

const SCOPE_NAMES: Record<string, string> = {
  openid: "who you are",
  email: "your email address",
  profile: "your profile",
  offline_access: "stays signed in",
};

/** "Apps with access" on /account: each app the person let in, and a button to take its access back. */
export function AppsWithAccess({ apps }: { apps: AppWithAccess[] }) {
  return (
    <div className="card">
      <h2>Apps with access</h2>
      {apps.length === 0 && <p className="muted">No app signs you in with PwdlessGs yet.</p>}
      {apps.length > 0 && (
        <table>
          <thead>
            <tr>
              <th>App</th>
              <th>Can see</th>
              <th>Since</th>
              <th></th>
            </tr>
          </thead>
          <tbody>
            {apps.map((app) => (
              <tr key={app.clientId} data-testid="app-row">
                <td>
                  {app.name}
                  {app.firstParty && <span className="muted"> (this organisation's)</span>}
                </td>
                <td>{app.scopes.map((s) => SCOPE_NAMES[s] ?? s).join(", ")}</td>
                <td>{new Date(app.since).toISOString().replace("T", " ").slice(0, 16)} UTC</td>
                <td>
                  <Form method="post" action="/account/apps">
                    <input type="hidden" name="clientId" value={app.clientId} />
                    <button type="submit" className="secondary" aria-label={`Remove access of ${app.name}`}>
                      Remove access
                    </button>
                  </Form>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <p className="muted">
        Removing an app's access signs you out of it: its tokens stop working on every server. It asks again next time
        you use it.
      </p>
    </div>
  );
}
