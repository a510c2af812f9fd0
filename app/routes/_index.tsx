import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json } from "@remix-run/node";
import { Link, useLoaderData } from "@remix-run/react";
import { optionalUser } from "#app/lib/auth/index.server.ts";
import { pageTitle, rootOf, useT } from "#app/lib/i18n/intl.ts";

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(rootOf(matches), "index.title") }];

export async function loader({ request, context }: LoaderFunctionArgs) {
  const signedIn = await optionalUser(request, context);
  return json({ email: signedIn?.user.email ?? null }, { headers: { "Cache-Control": "no-store" } });
}

export default function Index() {
  const t = useT();
  const { email } = useLoaderData<typeof loader>();
  return (
    <main>
      <div className="card">
        <h1>{t("index.title")}</h1>
        <p>{t("index.body")}</p>
        {email ? (
          <p>
            {t("index.signedInAs", { email })} <Link to="/account">{t("index.goToAccount")}</Link>
          </p>
        ) : (
          <Link className="button" to="/login">
            {t("nav.signIn")}
          </Link>
        )}
      </div>
    </main>
  );
}
