import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json, redirect } from "@remix-run/node";
import { Form, useLoaderData } from "@remix-run/react";
import { useEffect, useState } from "react";
import { getServices } from "#app/lib/services.server.ts";

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
  const headers = new Headers({ "Cache-Control": "no-store" });
  if (setCookie) headers.append("Set-Cookie", setCookie);
  return json(
    {
      methods: [...new Set(user.identities.map((i) => services.methods.accountName(i.provider)))],
      sessions,
      node: context.app.cluster.nodeId,
    },
    { headers },
  );
}

/** End one of the user's sessions (on every node); ending this one signs this browser out. */
export async function action({ request, context }: ActionFunctionArgs) {
  const services = getServices(context.app);
  const { user, session } = await services.auth.requireUser(request);
  const form = await request.formData().catch(() => new FormData());
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
  const { methods, sessions, node } = useLoaderData<typeof loader>();
  const [me, setMe] = useState<Me | null>(null);
  const [problem, setProblem] = useState<string | null>(null);

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
    </main>
  );
}
