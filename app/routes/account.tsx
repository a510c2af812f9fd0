import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json, redirect } from "@remix-run/node";
import { Form, useLoaderData, useRevalidator } from "@remix-run/react";
import { useEffect, useState } from "react";
import { addPasskey } from "#app/lib/sign-in/passkey/client.ts";
import { getServices } from "#app/lib/services.server.ts";
import { getOpenIdProvider } from "#app/lib/provider/index.server.ts";
import { AppsWithAccess } from "#app/components/apps-with-access.tsx";

export const meta: MetaFunction = () => [{ title: "Your account · PwdlessGs" }];

export async function loader({ request, context }: LoaderFunctionArgs) {
  const services = getServices(context.app);
  const { user, session, setCookie } = await services.auth.requireUser(request);
  const sessions = services.sessions.listActive(services.users.idsOf(user)).map((row) => ({
    sid: row.sid,
    current: row.sid === session.sid,
    createdAt: row.createdAt,
    lastUsedAt: row.lastUsedAt,
    createdOn: row.createdOn,
    method: row.method,
    userAgent: row.userAgent,
  }));
  const passkeys = services.passkeyStore.listOf(services.users.idsOf(user)).map(({ id, passkey }) => ({
    id,
    name: passkey.name,
    createdAt: passkey.createdAt,
    lastUsedAt: passkey.lastUsedAt,
  }));
  const headers = new Headers({ "Cache-Control": "no-store" });
  if (setCookie) headers.append("Set-Cookie", setCookie);
  const named = user.identities.map((i) => services.methods.accountName(i.provider));
  if (passkeys.length > 0) named.push(services.methods.accountName("passkey"));
  return json(
    {
      methods: [...new Set(named)],
      passkeys,
      sessions,
      node: context.app.cluster.nodeId,
      // OpenID provider on: the apps this person let in ("Apps with access")
      apps: getOpenIdProvider(context.app).enabled ? getOpenIdProvider(context.app).appsWithAccess(user) : null,
    },
    { headers },
  );
}

/** End one of the user's sessions (on every node; ending this one signs this browser out), or remove a passkey. */
export async function action({ request, context }: ActionFunctionArgs) {
  const services = getServices(context.app);
  const { user, session } = await services.auth.requireUser(request);
  const form = await request.formData().catch(() => new FormData());
  if (form.get("intent") === "remove-passkey") {
    const id = String(form.get("passkey") ?? "").slice(0, 1024);
    const passkey = services.passkeyStore.get(id);
    // someone else's passkey answers like a removed one: nothing says it exists
    if (!passkey || !services.users.idsOf(user).has(passkey.uid)) {
      services.audit.record("refused", { uid: user.id, ip: context.clientIp, reason: "passkey-remove-unknown" });
      return json({ error: "That passkey has already been removed." }, { status: 404 });
    }
    services.passkeyStore.remove(id);
    services.audit.record("passkey-removed", { uid: user.id, ip: context.clientIp, passkey: id.slice(0, 8) });
    return redirect("/account");
  }
  const sid = String(form.get("sid") ?? "");
  const target = services.sessions.findActive(sid);
  if (!target || !services.users.idsOf(user).has(target.uid)) {
    return json({ error: "That session has already ended." }, { status: 404 });
  }
  services.sessions.revoke(target.sid, "ended-from-account");
  services.audit.record("session-ended", { uid: user.id, ip: context.clientIp, current: target.sid === session.sid });
  if (target.sid === session.sid) {
    return redirect("/login?signedOut=1", { headers: { "Set-Cookie": services.auth.clearCookie() } });
  }
  return redirect("/account");
}

type Me = { id: string; email: string };

/** The access token lives in this module's memory only: never in storage, never in a cookie. */
let accessToken: string | null = null;

async function fetchMe(): Promise<Me> {
  if (!accessToken) {
    const refreshed = await fetch("/auth/refresh", { method: "POST", credentials: "same-origin" });
    if (!refreshed.ok) throw new Error("Your session has ended. Sign in again.");
    accessToken = ((await refreshed.json()) as { access_token: string }).access_token;
  }
  const response = await fetch("/api/me", { headers: { Authorization: `Bearer ${accessToken}` } });
  const fresh = response.headers.get("X-Access-Token");
  if (fresh) accessToken = fresh;
  if (response.status === 401) {
    accessToken = null;
    throw new Error("Your session has ended. Sign in again.");
  }
  if (!response.ok) throw new Error(`The API answered ${response.status}.`);
  return (await response.json()) as Me;
}

function device(userAgent: string): string {
  if (!userAgent) return "Unknown device";
  const browser = /Edg\//.test(userAgent)
    ? "Edge"
    : /Chrom(e|ium)\//.test(userAgent)
      ? "Chrome"
      : /Firefox\//.test(userAgent)
        ? "Firefox"
        : /Safari\//.test(userAgent)
          ? "Safari"
          : /curl\//.test(userAgent)
            ? "curl"
            : "Browser";
  const os = /Windows/.test(userAgent)
    ? "Windows"
    : /Android/.test(userAgent)
      ? "Android"
      : /iPhone|iPad/.test(userAgent)
        ? "iOS"
        : /Mac OS X/.test(userAgent)
          ? "macOS"
          : /Linux/.test(userAgent)
            ? "Linux"
            : "";
  return os ? `${browser} on ${os}` : browser;
}

export default function Account() {
  const { methods, passkeys, sessions, node, apps } = useLoaderData<typeof loader>();
  const [me, setMe] = useState<Me | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [passkeyName, setPasskeyName] = useState("");
  const [passkeyProblem, setPasskeyProblem] = useState<string | null>(null);
  const revalidator = useRevalidator();

  async function add() {
    setPasskeyProblem(null);
    try {
      await addPasskey(passkeyName.trim() || "Passkey");
      setPasskeyName("");
      revalidator.revalidate();
    } catch (error) {
      setPasskeyProblem(error instanceof Error ? error.message : "The passkey could not be added.");
    }
  }

  useEffect(() => {
    let live = true;
    fetchMe()
      .then((value) => live && setMe(value))
      .catch((error: Error) => live && setProblem(error.message));
    return () => {
      live = false;
    };
  }, []);

  return (
    <main>
      <div className="card">
        <h1>Your account</h1>
        {problem && <p className="error">{problem}</p>}
        {!me && !problem && <p className="muted">Loading your account…</p>}
        {me && (
          <table>
            <tbody>
              <tr>
                <th>Email</th>
                <td data-testid="account-email">{me.email}</td>
              </tr>
              <tr>
                <th>User id</th>
                <td className="mono" data-testid="account-id">
                  {me.id}
                </td>
              </tr>
              <tr>
                <th>Sign-in methods</th>
                <td>{methods.join(", ") || "—"}</td>
              </tr>
            </tbody>
          </table>
        )}
        <p className="muted">
          Read from <code>/api/me</code> with a short-lived access token kept in this page's memory.
        </p>
        <Form method="post" action="/logout" className="row">
          <button type="submit">Sign out</button>
          <button type="submit" name="scope" value="everywhere" className="secondary">
            Sign out everywhere
          </button>
        </Form>
      </div>
      <div className="card">
        <h2>Passkeys</h2>
        {passkeys.length === 0 && <p className="muted">No passkeys yet. Your email always works.</p>}
        {passkeys.length > 0 && (
          <table>
            <thead>
              <tr>
                <th>Name</th>
                <th>Added</th>
                <th>Last used</th>
                <th></th>
              </tr>
            </thead>
            <tbody>
              {passkeys.map((p) => (
                <tr key={p.id} data-testid="passkey-row">
                  <td>{p.name}</td>
                  <td>{new Date(p.createdAt).toISOString().replace("T", " ").slice(0, 16)} UTC</td>
                  <td>
                    {p.lastUsedAt
                      ? `${new Date(p.lastUsedAt).toISOString().replace("T", " ").slice(0, 16)} UTC`
                      : "never"}
                  </td>
                  <td>
                    <Form method="post">
                      <input type="hidden" name="intent" value="remove-passkey" />
                      <input type="hidden" name="passkey" value={p.id} />
                      <button type="submit" className="secondary" aria-label={`Remove passkey ${p.name}`}>
                        Remove
                      </button>
                    </Form>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <div className="row">
          <label htmlFor="passkey-name">Name</label>
          <input
            id="passkey-name"
            value={passkeyName}
            maxLength={64}
            placeholder="e.g. Laptop"
            onChange={(event) => setPasskeyName(event.target.value)}
          />
          <button type="button" onClick={() => void add()}>
            Add a passkey
          </button>
        </div>
        {passkeyProblem && (
          <p className="error" role="alert">
            {passkeyProblem}
          </p>
        )}
      </div>
      <div className="card">
        <h2>Active sessions</h2>
        <table>
          <thead>
            <tr>
              <th>Device</th>
              <th>Signed in</th>
              <th>Last used</th>
              <th>Node</th>
              <th></th>
            </tr>
          </thead>
          <tbody>
            {sessions.map((s) => (
              <tr key={s.sid} data-testid="session-row">
                <td>
                  {device(s.userAgent)} {s.current && <strong>(this device)</strong>}
                </td>
                <td>{new Date(s.createdAt).toISOString().replace("T", " ").slice(0, 16)} UTC</td>
                <td>{new Date(s.lastUsedAt).toISOString().replace("T", " ").slice(0, 16)} UTC</td>
                <td className="mono">{s.createdOn.slice(-8)}</td>
                <td>
                  <Form method="post">
                    <input type="hidden" name="sid" value={s.sid} />
                    <button
                      type="submit"
                      className="secondary"
                      aria-label={`End session ${device(s.userAgent)} from ${new Date(s.createdAt).toISOString()}`}
                    >
                      {s.current ? "Sign out" : "End"}
                    </button>
                  </Form>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        <p className="muted">
          This page was served by node <code>{node.slice(-8)}</code>.
        </p>
      </div>
      {apps && <AppsWithAccess apps={apps} />}
    </main>
  );
}
