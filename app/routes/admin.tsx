import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json } from "@remix-run/node";
import { Form, Link, useLoaderData } from "@remix-run/react";
import { RelativeTime } from "#app/components/relative-time.tsx";
import { pageTitle, rootOf, useRich, useT, type Said } from "#app/lib/i18n/intl.ts";
import { getServices } from "#app/lib/services.server.ts";
import { requireUser } from "#app/lib/auth/index.server.ts";

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(rootOf(matches), "admin.pageTitle") }];

/** /admin: find users by address prefix or id (ADMIN_EMAILS sessions only). */
export async function loader({ request, context }: LoaderFunctionArgs) {
  const services = getServices(context.app);
  const { user } = await requireUser(request, context);
  if (!services.admin.isAdminUser(user)) {
    services.admin.refused(403);
    throw json({ id: "admin.notAdmin" } satisfies Said, { status: 403 });
  }
  const url = new URL(request.url);
  const query = (url.searchParams.get("query") ?? "").slice(0, 254);
  const page = services.admin.search(query, 50, url.searchParams.get("cursor") ?? undefined);
  services.admin.noteRead(user.id, "search");
  return json(
    {
      query,
      erased: url.searchParams.has("erased"),
      // times as numbers: the browser shows them relative, in the page's language and its own time zone
      users: page.users.map((u) => ({ ...u, createdAt: Date.parse(u.createdAt) })),
      nextCursor: page.nextCursor,
      indexReady: page.indexReady,
    },
    { headers: { "Cache-Control": "no-store" } },
  );
}

export default function Admin() {
  const t = useT();
  const rich = useRich();
  const { query, erased, users, nextCursor, indexReady } = useLoaderData<typeof loader>();
  return (
    <main>
      <div className="card">
        <h1>{t("admin.title")}</h1>
        {erased && (
          <p className="notice" role="status">
            {t("admin.erased")}
          </p>
        )}
        <Form method="get" role="search">
          <label htmlFor="query">{t("admin.search.label")}</label>
          <div className="row tight">
            <input
              id="query"
              name="query"
              type="text"
              defaultValue={query}
              autoCapitalize="none"
              autoComplete="off"
              spellCheck={false}
            />
            <button type="submit">{t("admin.search.button")}</button>
          </div>
        </Form>
        {!indexReady && <p className="notice spaced">{t("admin.indexBuilding")}</p>}
      </div>
      <section className="card" aria-labelledby="results-heading">
        <h2 id="results-heading">{t("admin.resultsHeading")}</h2>
        {users.length === 0 ? (
          <p className="muted">{t("admin.noMatch")}</p>
        ) : (
          <p className="muted">
            {nextCursor ? t("admin.resultsMore", { count: users.length }) : t("admin.results", { count: users.length })}
          </p>
        )}
        {users.length > 0 && (
          <ul className="items">
            {users.map((u) => (
              <li key={u.id} data-testid="admin-user-row" className="item">
                <div className="item-text">
                  <Link to={`/admin/users/${u.id}`} className="strong">
                    {u.email}
                  </Link>
                  <span className="muted">
                    {rich("admin.created", { when: <RelativeTime at={u.createdAt} /> })}
                    {" · "}
                    {u.disabled ? (
                      <span className="badge">{t("admin.status.disabled")}</span>
                    ) : (
                      t("admin.status.active")
                    )}
                  </span>
                </div>
              </li>
            ))}
          </ul>
        )}
        {nextCursor && (
          <p>
            <Link to={`/admin?query=${encodeURIComponent(query)}&cursor=${encodeURIComponent(nextCursor)}`}>
              {t("admin.nextPage")}
            </Link>
          </p>
        )}
      </section>
    </main>
  );
}
