import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json } from "@remix-run/node";
import { Form, Link, useLoaderData } from "@remix-run/react";
import { getServices } from "#app/lib/services.server.ts";
import { requireUser } from "#app/lib/auth/index.server.ts";

export const meta: MetaFunction = () => [{ title: "Users · Admin · PwdlessGs" }];

/** /admin: find users by address prefix or id (ADMIN_EMAILS sessions only). */
export async function loader({ request, context }: LoaderFunctionArgs) {
  const services = getServices(context.app);
  const { user } = await requireUser(request, context);
  if (!services.admin.isAdminUser(user)) {
    services.admin.refused(403);
    throw new Response("This page is for the site's administrators (ADMIN_EMAILS).", { status: 403 });
  }
  const url = new URL(request.url);
  const query = (url.searchParams.get("query") ?? "").slice(0, 254);
  const page = services.admin.search(query, 50, url.searchParams.get("cursor") ?? undefined);
  services.admin.noteRead(user.id, "search");
  return json({ query, ...page }, { headers: { "Cache-Control": "no-store" } });
}

export default function Admin() {
  const { query, users, nextCursor, indexReady } = useLoaderData<typeof loader>();
  return (
    <main>
      <div className="card">
        <h1>Users</h1>
        <Form method="get" className="row" role="search">
          <label htmlFor="query">Address starts with, or user id</label>
          <input id="query" name="query" type="text" defaultValue={query} />
          <button type="submit">Search</button>
        </Form>
        {!indexReady && <p className="notice">The address index is still being built: results may be missing.</p>}
        <table>
          <thead>
            <tr>
              <th>Address</th>
              <th>Created</th>
              <th>Status</th>
            </tr>
          </thead>
          <tbody>
            {users.map((u) => (
              <tr key={u.id} data-testid="admin-user-row">
                <td>
                  <Link to={`/admin/users/${u.id}`}>{u.email}</Link>
                </td>
                <td>{u.createdAt.replace("T", " ").slice(0, 16)} UTC</td>
                <td>{u.disabled ? "disabled" : "active"}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {users.length === 0 && <p className="muted">No users match.</p>}
        {nextCursor && (
          <p>
            <Link to={`/admin?query=${encodeURIComponent(query)}&cursor=${encodeURIComponent(nextCursor)}`}>
              Next page
            </Link>
          </p>
        )}
      </div>
    </main>
  );
}
