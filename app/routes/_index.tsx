import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json } from "@remix-run/node";
import { Link, useLoaderData } from "@remix-run/react";
import { optionalUser } from "#app/lib/auth/index.server.ts";

export const meta: MetaFunction = () => [{ title: "PwdlessGs" }];

export async function loader({ request, context }: LoaderFunctionArgs) {
  const signedIn = await optionalUser(request, context);
  return json({ email: signedIn?.user.email ?? null }, { headers: { "Cache-Control": "no-store" } });
}

export default function Index() {
  const { email } = useLoaderData<typeof loader>();
  return (
    <main>
      <div className="card">
        <h1>Passwordless sign-in</h1>
        <p>Sign in with a link sent to your email. No password to remember, nothing to leak.</p>
        {email ? (
          <p>
            You are signed in as <strong>{email}</strong>. <Link to="/account">Go to your account</Link>.
          </p>
        ) : (
          <Link className="button" to="/login">
            Sign in
          </Link>
        )}
      </div>
    </main>
  );
}
