import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json, redirect } from "@remix-run/node";
import { Form, Link, useLoaderData, useSearchParams } from "@remix-run/react";
import { getServices } from "#app/lib/services.server.ts";
import { requireUser } from "#app/lib/auth/index.server.ts";

export const meta: MetaFunction = () => [{ title: "User · Admin · PwdlessGs" }];

async function requireAdmin(request: Request, context: LoaderFunctionArgs["context"]) {
  const services = getServices(context.app);
  const { user } = await requireUser(request, context);
  if (!services.admin.isAdminUser(user)) {
    services.admin.refused(403);
    throw new Response("This page is for the site's administrators (ADMIN_EMAILS).", { status: 403 });
  }
  return { services, admin: user };
}

export async function loader({ request, params, context }: LoaderFunctionArgs) {
  const { services, admin } = await requireAdmin(request, context);
  const user = services.admin.detail(params.id ?? "");
  if (!user) throw new Response("There is no user with that id.", { status: 404 });
  services.admin.noteRead(admin.id, "user", user.id);
  return json({ user }, { headers: { "Cache-Control": "no-store" } });
}

/** The acts on a user; destructive ones arrive only from their confirmation step (confirmed=yes). */
export async function action({ request, params, context }: ActionFunctionArgs) {
  const { services, admin } = await requireAdmin(request, context);
  const form = await request.formData().catch(() => new FormData());
  const intent = String(form.get("intent") ?? "");
  const id = params.id ?? "";
  const confirmed = form.get("confirmed") === "yes";
  if (intent === "enable") services.admin.enable(id, admin.id);
  else if (!confirmed) return redirect(`/admin/users/${id}?confirm=${encodeURIComponent(intent)}`);
  else if (intent === "disable") services.admin.disable(id, admin.id, String(form.get("reason") ?? ""));
  else if (intent === "end-sessions") services.admin.endSessions(id, admin.id);
  else if (intent === "erase") {
    services.admin.erase(id, admin.id);
    return redirect("/admin?erased=1");
  }
  return redirect(`/admin/users/${id}`);
}

const CONFIRM: Record<string, { question: string; button: string }> = {
  disable: {
    question: "Disable this user? They cannot sign in, and every session ends on every node.",
    button: "Disable",
  },
  "end-sessions": { question: "End every session of this user on every node?", button: "End sessions" },
  erase: {
    question: "Erase this user and every row about them, on every node? This cannot be undone.",
    button: "Erase",
  },
};

export default function AdminUser() {
  const { user } = useLoaderData<typeof loader>();
  const [params] = useSearchParams();
  const confirm = CONFIRM[params.get("confirm") ?? ""];
  const act = (intent: string, label: string, danger = false) => (
    <Form method="post">
      <input type="hidden" name="intent" value={intent} />
      <button type="submit" className={danger ? "danger" : "secondary"}>
        {label}
      </button>
    </Form>
  );
  return (
    <main>
      <div className="card">
        <h1>{user.email}</h1>
        {confirm && (
          <Form method="post" className="notice" role="alertdialog" aria-label="Confirm">
            <p>{confirm.question}</p>
            <input type="hidden" name="intent" value={params.get("confirm") ?? ""} />
            <input type="hidden" name="confirmed" value="yes" />
            <div className="row">
              <button type="submit" className="danger">
                {confirm.button}
              </button>
              <Link to={`/admin/users/${user.id}`}>Cancel</Link>
            </div>
          </Form>
        )}
        <table>
          <tbody>
            <tr>
              <th>User id</th>
              <td className="mono">{user.id}</td>
            </tr>
            <tr>
              <th>Status</th>
              <td data-testid="admin-status">{user.disabled ? `disabled since ${user.disabledAt}` : "active"}</td>
            </tr>
            <tr>
              <th>Created</th>
              <td>{user.createdAt}</td>
            </tr>
            <tr>
              <th>Identities</th>
              <td>{user.identities.map((i) => `${i.provider}: ${i.subject}`).join(", ") || "—"}</td>
            </tr>
            <tr>
              <th>Passkeys</th>
              <td>{user.passkeys.map((p) => p.name).join(", ") || "—"}</td>
            </tr>
            <tr>
              <th>Active sessions</th>
              <td>{user.sessions.length}</td>
            </tr>
          </tbody>
        </table>
        <div className="row">
          {user.disabled ? act("enable", "Enable") : act("disable", "Disable…", true)}
          {act("end-sessions", "End sessions…")}
          {act("erase", "Erase…", true)}
        </div>
        <p>
          <Link to="/admin">Back to users</Link>
        </p>
      </div>
    </main>
  );
}
