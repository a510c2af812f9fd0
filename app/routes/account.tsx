import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json, redirect } from "@remix-run/node";
import { Form, Link, useActionData, useLoaderData, useNavigation, useRevalidator } from "@remix-run/react";
import { useEffect, useState } from "react";
import { PasskeyText } from "#app/components/passkey-text.tsx";
import { RelativeTime } from "#app/components/relative-time.tsx";
import { deviceName, deviceOf, methodName } from "#app/lib/device.ts";
import { pageTitle, rootOf, useRich, useT, type MessageId, type Said } from "#app/lib/i18n/intl.ts";
import { localeOf } from "#app/lib/i18n/locales.ts";
import { addPasskey, PasskeyProblem } from "#app/lib/sign-in/passkey/client.ts";
import { requireUser } from "#app/lib/auth/index.server.ts";
import { apiFetch } from "#app/lib/auth/client.ts";
import { getServices } from "#app/lib/services.server.ts";
import { AccountLifecycle } from "#app/components/account-lifecycle.tsx";
import { getOpenIdProvider } from "#app/lib/provider/index.server.ts";
import { AppsWithAccess } from "#app/components/apps-with-access.tsx";

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(rootOf(matches), "account.title") }];

export async function loader({ request, context }: LoaderFunctionArgs) {
  const services = getServices(context.app);
  const { user, session } = await requireUser(request, context);
  const sessions = services.sessions.listActive(services.users.idsOf(user)).map((row) => ({
    sid: row.sid,
    current: row.sid === session.sid,
    createdAt: row.createdAt,
    lastUsedAt: row.lastUsedAt,
    method: row.method,
    device: deviceOf(row.userAgent),
  }));
  // this device first, then the most recently active
  sessions.sort((a, b) => Number(b.current) - Number(a.current) || b.lastUsedAt - a.lastUsedAt);
  const passkeys = services.passkeyStore.listOf(services.users.idsOf(user)).map(({ id, passkey }) => ({
    id,
    name: passkey.name,
    createdAt: passkey.createdAt,
    lastUsedAt: passkey.lastUsedAt,
  }));
  const ids = [...new Set([...user.identities.map((i) => i.provider), ...(passkeys.length > 0 ? ["passkey"] : [])])];
  // a confirmation step asked for by a link (works without JavaScript): ?confirm=everywhere or ?confirm=passkey&id=…
  const url = new URL(request.url);
  const confirmPasskey = url.searchParams.get("confirm") === "passkey" ? url.searchParams.get("id") : null;
  return json(
    {
      methods: ids.map((id) => ({ id, name: services.methods.accountName(id) })),
      passkeys,
      sessions,
      // OpenID provider on: the apps this person let in ("Apps with access")
      apps: getOpenIdProvider(context.app).enabled ? getOpenIdProvider(context.app).appsWithAccess(user) : null,
      confirm: {
        everywhere: url.searchParams.get("confirm") === "everywhere",
        passkey: passkeys.find((p) => p.id === confirmPasskey) ?? null,
      },
      pendingAddress: services.lifecycle.pendingAddress(user) ?? null,
      addressChanged: url.searchParams.has("addressChanged"),
    },
    { headers: { "Cache-Control": "no-store" } },
  );
}

/** End one of the user's sessions (on every node; ending this one signs this browser out), or remove a passkey. */
export async function action({ request, context }: ActionFunctionArgs) {
  const services = getServices(context.app);
  const { user, session } = await requireUser(request, context);
  const form = await request.formData().catch(() => new FormData());
  if (form.get("intent") === "remove-passkey") {
    const id = String(form.get("passkey") ?? "").slice(0, 1024);
    const passkey = services.passkeyStore.get(id);
    // someone else's passkey answers like a removed one: nothing says it exists
    if (!passkey || !services.users.idsOf(user).has(passkey.uid)) {
      services.audit.record("refused", { uid: user.id, ip: context.clientIp, reason: "passkey-remove-unknown" });
      return json({ error: { id: "account.passkeys.gone" } as Said }, { status: 404 });
    }
    services.passkeyStore.remove(id);
    services.lifecycle.noticePasskey(user, "removed", passkey.name, localeOf(request));
    services.audit.record("passkey-removed", { uid: user.id, ip: context.clientIp, passkey: id.slice(0, 8) });
    return redirect("/account");
  }
  const sid = String(form.get("sid") ?? "");
  const target = services.sessions.findActive(sid);
  if (!target || !services.users.idsOf(user).has(target.uid)) {
    return json({ error: { id: "account.sessions.gone" } as Said }, { status: 404 });
  }
  services.sessions.revoke(target.sid, "ended-from-account");
  services.audit.record("session-ended", { uid: user.id, ip: context.clientIp, current: target.sid === session.sid });
  if (target.sid === session.sid) {
    return redirect("/login?signedOut=1", { headers: { "Set-Cookie": services.auth.clearCookie() } });
  }
  return redirect("/account");
}

type Me = { id: string; email: string };
type MeProblem = "ended" | "failed";

/** The API with the access token apiFetch keeps in memory only: never in storage, never in a cookie. */
async function fetchMe(): Promise<Me | MeProblem> {
  const response = await apiFetch("/api/me");
  if (response.status === 401) return "ended";
  if (!response.ok) return "failed";
  return (await response.json()) as Me;
}

export default function Account() {
  const t = useT();
  const rich = useRich();
  const { methods, passkeys, sessions, confirm, pendingAddress, addressChanged, apps } = useLoaderData<typeof loader>();
  const refused = useActionData<{ error: Said }>();
  const [me, setMe] = useState<Me | MeProblem | null>(null);
  const [passkeyProblem, setPasskeyProblem] = useState<MessageId | null>(null);
  const [adding, setAdding] = useState(false);
  const revalidator = useRevalidator();
  const busy = useNavigation().state !== "idle";

  // the name is read from the form when it is sent: uncontrolled, so what a person typed before
  // the page came alive (hydration) is kept, not reset
  async function add(form: HTMLFormElement) {
    setPasskeyProblem(null);
    setAdding(true);
    try {
      const typed = String(new FormData(form).get("name") ?? "").trim();
      await addPasskey(typed || t("account.passkeys.defaultName"));
      form.reset();
      revalidator.revalidate();
    } catch (error) {
      setPasskeyProblem(error instanceof PasskeyProblem ? error.id : "passkey.addFailed");
    } finally {
      setAdding(false);
    }
  }

  useEffect(() => {
    let live = true;
    fetchMe()
      .catch((): MeProblem => "failed")
      .then((value) => live && setMe(value));
    return () => {
      live = false;
    };
  }, []);

  return (
    <main>
      {refused?.error && (
        <p className="notice" role="alert">
          {t(refused.error.id, refused.error.values)}
        </p>
      )}
      {addressChanged && (
        <p className="notice" role="status">
          {t("account.addressChanged")}
        </p>
      )}
      <div className="card">
        <h1>{t("account.title")}</h1>
        {me === null && <p className="muted">{t("account.loading")}</p>}
        {me === "ended" && (
          <p className="error" role="alert">
            {t("account.sessionEnded")} <Link to="/login">{t("account.signInAgain")}</Link>
          </p>
        )}
        {me === "failed" && (
          <p className="error" role="alert">
            {t("account.loadFailed")}
          </p>
        )}
        {me && typeof me === "object" && (
          <dl className="facts">
            <div>
              <dt>{t("account.email")}</dt>
              <dd data-testid="account-email">{me.email}</dd>
            </div>
            <div>
              <dt>{t("account.methods")}</dt>
              <dd data-testid="account-methods">
                {[...new Set(methods.map((m) => methodName(t, m)))].join(", ") || t("account.none")}
              </dd>
            </div>
            <div>
              <dt>{t("account.userId")}</dt>
              <dd className="mono" data-testid="account-id">
                {me.id}
              </dd>
            </div>
          </dl>
        )}
        {confirm.everywhere ? (
          <div className="confirm" role="region" aria-labelledby="confirm-everywhere">
            <h2 id="confirm-everywhere">{t("account.confirmEverywhere.title")}</h2>
            <p>{t("account.confirmEverywhere.body", { count: sessions.length })}</p>
            <Form method="post" action="/logout" className="row">
              <button type="submit" name="scope" value="everywhere" className="danger" autoFocus>
                {t("account.confirmEverywhere.button")}
              </button>
              <Link to="/account">{t("account.cancel")}</Link>
            </Form>
          </div>
        ) : (
          <div className="row">
            <Form method="post" action="/logout">
              <button type="submit">{t("account.signOut")}</button>
            </Form>
            <Link className="button secondary" to="/account?confirm=everywhere">
              {t("account.signOutEverywhere")}
            </Link>
          </div>
        )}
      </div>
      <section className="card" aria-labelledby="passkeys-heading">
        <h2 id="passkeys-heading">{t("account.passkeys")}</h2>
        {passkeys.length === 0 && <p className="muted">{t("account.passkeys.none")}</p>}
        {passkeys.length > 0 && (
          <ul className="items">
            {passkeys.map((p) => (
              <li key={p.id} data-testid="passkey-row" className="item">
                <PasskeyText name={p.name} createdAt={p.createdAt} lastUsedAt={p.lastUsedAt} />
                {confirm.passkey?.id === p.id ? null : (
                  <Link
                    className="button secondary small"
                    to={`/account?confirm=passkey&id=${encodeURIComponent(p.id)}`}
                  >
                    {t("account.passkeys.remove")}
                    <span className="visually-hidden"> {p.name}</span>
                  </Link>
                )}
                {confirm.passkey?.id === p.id && (
                  <div className="confirm" role="region" aria-labelledby="confirm-passkey">
                    <h3 id="confirm-passkey">{t("account.passkeys.confirm.title", { name: p.name })}</h3>
                    <p>{t("account.passkeys.confirm.body")}</p>
                    <Form method="post" action="/account" className="row">
                      <input type="hidden" name="intent" value="remove-passkey" />
                      <input type="hidden" name="passkey" value={p.id} />
                      <button type="submit" className="danger" disabled={busy} autoFocus>
                        {t("account.passkeys.confirm.button")}
                      </button>
                      <Link to="/account">{t("account.cancel")}</Link>
                    </Form>
                  </div>
                )}
              </li>
            ))}
          </ul>
        )}
        <form
          className="add-passkey"
          onSubmit={(event) => {
            event.preventDefault();
            void add(event.currentTarget);
          }}
        >
          <label htmlFor="passkey-name">{t("account.passkeys.nameLabel")}</label>
          <div className="row tight">
            <input
              id="passkey-name"
              name="name"
              type="text"
              defaultValue=""
              maxLength={64}
              placeholder={t("account.passkeys.namePlaceholder")}
            />
            <button type="submit" disabled={adding}>
              {adding ? t("account.passkeys.adding") : t("account.passkeys.add")}
            </button>
          </div>
        </form>
        {passkeyProblem && (
          <p className="error" role="alert" data-testid="passkey-problem">
            {t(passkeyProblem)}
          </p>
        )}
      </section>
      <section className="card" aria-labelledby="sessions-heading">
        <h2 id="sessions-heading">{t("account.sessions")}</h2>
        <p className="muted">{t("account.sessions.count", { count: sessions.length })}</p>
        <ul className="items">
          {sessions.map((s) => {
            const name = deviceName(t, s.device);
            return (
              <li key={s.sid} data-testid="session-row" className="item">
                <div className="item-text">
                  <strong>
                    {name} {s.current && <span className="badge">{t("account.sessions.thisDevice")}</span>}
                  </strong>
                  <span className="muted">
                    {rich("account.sessions.signedIn", { when: <RelativeTime at={s.createdAt} /> })}
                    {" · "}
                    {rich("account.sessions.lastUsed", { when: <RelativeTime at={s.lastUsedAt} /> })}
                  </span>
                </div>
                <Form method="post" action="/account">
                  <input type="hidden" name="sid" value={s.sid} />
                  <button type="submit" className="secondary small" disabled={busy}>
                    {s.current ? t("account.sessions.signOutHere") : t("account.sessions.end")}
                    {!s.current && <span className="visually-hidden"> {name}</span>}
                  </button>
                </Form>
              </li>
            );
          })}
        </ul>
      </section>
      {apps && <AppsWithAccess apps={apps} />}
      <AccountLifecycle pendingAddress={pendingAddress} />
    </main>
  );
}
