/**
 * Example (README, "Build your app on PwdlessGs"): a page anyone may see, which greets a signed-in
 * person by name. Served in local mode only; copy it into your own routes.
 */
import type { LoaderFunctionArgs } from "@remix-run/node";
import { json } from "@remix-run/node";
import { useLoaderData } from "@remix-run/react";
import { optionalUser } from "#app/lib/auth/index.server.ts";

export async function loader({ request, context }: LoaderFunctionArgs) {
  const signedIn = await optionalUser(request, context);
  return json({ email: signedIn?.user.email ?? null });
}

export default function WelcomePage() {
  const { email } = useLoaderData<typeof loader>();
  return <main>{email ? <h1>Welcome back, {email}</h1> : <h1>Welcome, guest</h1>}</main>;
}
