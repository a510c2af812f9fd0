import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json, redirect } from "@remix-run/node";
import { Form, Link, useLoaderData, useNavigation, useSearchParams } from "@remix-run/react";
import { PasskeyText } from "#app/components/passkey-text.tsx";
import { RelativeTime } from "#app/components/relative-time.tsx";
import { deviceName, deviceOf, methodName } from "#app/lib/device.ts";
import { pageTitle, rootOf, useRich, useT, type MessageId, type Said } from "#app/lib/i18n/intl.ts";
import { getServices } from "#app/lib/services.server.ts";
import { requireUser } from "#app/lib/auth/index.server.ts";

export const meta: MetaFunction<typeof loader> = ({ data, matches }) => [
  { title: pageTitle(rootOf(matches), "admin.user.pageTitle", { email: data?.user.email ?? "" }) },
];

async function requireAdmin(request: Request, context: LoaderFunctionArgs["context"]) {
  const services = getServices(context.app);
  const { user } = await requireUser(request, context);
  if (!services.admin.isAdminUser(user)) {
    services.admin.refused(403);
    throw json({ id: "admin.notAdmin" } satisfies Said, { status: 403 });
  }
  return { services, admin: user };
}

export async function loader({ request, params, context }: LoaderFunctionArgs) {
  const { services, admin } = await requireAdmin(request, context);
  const user = services.admin.detail(params.id ?? "");
  if (!user) throw json({ id: "admin.noUser" } satisfies Said, { status: 404 });
  services.admin.noteRead(admin.id, "user", user.id);
  const method = (id: string) => ({ id, name: services.methods.accountName(id) });
  // times as numbers (the browser says them relative, in the page's language and time zone), devices by name
  return json(
    {
      user: {
        id: user.id,
        email: user.email,
        disabled: user.disabled,
        disabledAt: user.disabledAt === null ? null : Date.parse(user.disabledAt),
        createdAt: Date.parse(user.createdAt),
        createdOn: user.createdOn,
        otherIds: user.otherIds,
        identities: user.identities.map((i) => ({
          provider: method(i.provider),
          subject: i.subject,
          linkedAt: Date.parse(i.linkedAt),
        })),
        passkeys: user.passkeys.map((p) => ({
          id: p.id,
          name: p.name,
          createdAt: Date.parse(p.createdAt),
          lastUsedAt: p.lastUsedAt === null ? null : Date.parse(p.lastUsedAt),
        })),
        sessions: user.sessions
          .map((s) => ({
            id: s.id,
            method: method(s.method),
            device: deviceOf(s.userAgent),
            createdOn: s.createdOn,
            createdAt: Date.parse(s.createdAt),
            lastUsedAt: Date.parse(s.lastUsedAt),
          }))
          .sort((a, b) => b.lastUsedAt - a.lastUsedAt),
      },
    },
    { headers: { "Cache-Control": "no-store" } },
  );
}

/** The acts on a user; destructive ones arrive only from their confirmation step (confirmed=yes). */
export async function action({ request, params, context }: ActionFunctionArgs) {
  const { services, admin } = await requireAdmin(request, context);
  const form = await request.formData().catch(() => new FormData());
  const intent = String(form.get("intent") ?? "");
  const id = params.id ?? "";
  const confirmed = form.get("confirmed") === "yes";
  if (intent === "enable") services.admin.enable(id, admin.id);
  else if (!Object.hasOwn(CONFIRM, intent)) return redirect(`/admin/users/${id}`);
  else if (!confirmed) return redirect(`/admin/users/${id}?confirm=${encodeURIComponent(intent)}`);
  else if (intent === "disable") services.admin.disable(id, admin.id, String(form.get("reason") ?? ""));
  else if (intent === "end-sessions") services.admin.endSessions(id, admin.id);
  else if (intent === "erase") {
    services.admin.erase(id, admin.id);
    return redirect("/admin?erased=1");
  }
  return redirect(`/admin/users/${id}`);
}

/** Each destructive act's question and button (the question may count the user's sessions). */
const CONFIRM: Record<string, { question: MessageId; button: MessageId }> = {
  disable: { question: "admin.confirm.disable", button: "admin.confirm.disableButton" },
  "end-sessions": { question: "admin.confirm.endSessions", button: "admin.confirm.endSessionsButton" },
  erase: { question: "admin.confirm.erase", button: "admin.confirm.eraseButton" },
};

export default function AdminUser() {
  const t = useT();
  const rich = useRich();
  const { user } = useLoaderData<typeof loader>();
  const [params] = useSearchParams();
  const busy = useNavigation().state !== "idle";
  const intent = params.get("confirm") ?? "";
  const confirm = Object.hasOwn(CONFIRM, intent) ? CONFIRM[intent] : undefined;
  const act = (name: string, label: string, danger = false) => (
    <Form method="post">
      <input type="hidden" name="intent" value={name} />
      <button type="submit" className={danger ? "danger" : "secondary"} disabled={busy}>
        {label}
      </button>
    </Form>
  );
  return (
    <main>
      <div className="card">
        <h1>{user.email}</h1>
        <dl className="facts">
          <div>
            <dt>{t("admin.user.id")}</dt>
            <dd className="mono">{user.id}</dd>
          </div>
          <div>
            <dt>{t("admin.user.status")}</dt>
            <dd data-testid="admin-status">
              {!user.disabled
                ? t("admin.status.active")
                : user.disabledAt === null
                  ? t("admin.status.disabled")
                  : rich("admin.user.disabledSince", { when: <RelativeTime at={user.disabledAt} /> })}
            </dd>
          </div>
          <div>
            <dt>{t("admin.user.created")}</dt>
            <dd>
              <RelativeTime at={user.createdAt} />
            </dd>
          </div>
          <div>
            <dt>{t("admin.user.createdOn")}</dt>
            <dd className="mono">{user.createdOn}</dd>
          </div>
          {user.otherIds.length > 0 && (
            <div>
              <dt>{t("admin.user.otherIds")}</dt>
              <dd className="mono">{user.otherIds.join(", ")}</dd>
            </div>
          )}
          <div>
            <dt>{t("admin.user.identities")}</dt>
            <dd>
              {user.identities.length === 0
                ? t("admin.user.none")
                : user.identities.map((i) => (
                    <div key={`${i.provider.id}:${i.subject}`}>
                      {rich("admin.user.identity", {
                        provider: methodName(t, i.provider),
                        subject: <span className="mono">{i.subject}</span>,
                        when: <RelativeTime at={i.linkedAt} />,
                      })}
                    </div>
                  ))}
            </dd>
          </div>
        </dl>
        <h2 id="acts-heading">{t("admin.user.acts")}</h2>
        {confirm ? (
          <Form
            method="post"
            className="confirm"
            role="alertdialog"
            aria-label={t("admin.confirm.label")}
            aria-describedby="confirm-question"
          >
            <p id="confirm-question">
              <strong>{t(confirm.question, { count: user.sessions.length })}</strong>
            </p>
            <input type="hidden" name="intent" value={intent} />
            <input type="hidden" name="confirmed" value="yes" />
            <div className="row">
              <button type="submit" className="danger" disabled={busy} autoFocus>
                {t(confirm.button)}
              </button>
              <Link to={`/admin/users/${user.id}`}>{t("account.cancel")}</Link>
            </div>
          </Form>
        ) : (
          <div className="row" role="group" aria-labelledby="acts-heading">
            {user.disabled ? act("enable", t("admin.act.enable")) : act("disable", t("admin.act.disable"), true)}
            {act("end-sessions", t("admin.act.endSessions"))}
            {act("erase", t("admin.act.erase"), true)}
          </div>
        )}
      </div>
      <section className="card" aria-labelledby="sessions-heading">
        <h2 id="sessions-heading">{t("admin.user.sessions")}</h2>
        <p className="muted">{t("admin.user.sessionsCount", { count: user.sessions.length })}</p>
        {user.sessions.length > 0 && (
          <ul className="items">
            {user.sessions.map((s) => (
              <li key={s.id} className="item" data-testid="admin-session-row">
                <div className="item-text">
                  <strong>{deviceName(t, s.device)}</strong>
                  <span className="muted">
                    {rich("admin.user.session", {
                      method: methodName(t, s.method),
                      signedIn: <RelativeTime at={s.createdAt} />,
                      node: <span className="mono">{s.createdOn}</span>,
                      lastUsed: <RelativeTime at={s.lastUsedAt} />,
                    })}
                  </span>
                </div>
              </li>
            ))}
          </ul>
        )}
      </section>
      <section className="card" aria-labelledby="passkeys-heading">
        <h2 id="passkeys-heading">{t("admin.user.passkeys")}</h2>
        <p className="muted">{t("admin.user.passkeysCount", { count: user.passkeys.length })}</p>
        {user.passkeys.length > 0 && (
          <ul className="items">
            {user.passkeys.map((p) => (
              <li key={p.id} className="item">
                <PasskeyText name={p.name} createdAt={p.createdAt} lastUsedAt={p.lastUsedAt} />
              </li>
            ))}
          </ul>
        )}
      </section>
      <p>
        <Link to="/admin">{t("admin.back")}</Link>
      </p>
    </main>
  );
}
