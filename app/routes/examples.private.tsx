/**
 * Example (README, "Build your app on PwdlessGs"): a page only signed-in people see, which also
 * calls an API route from the browser. Served in local mode only; copy it into your own routes.
 */
import type { LoaderFunctionArgs } from "@remix-run/node";
import { json } from "@remix-run/node";
import { useLoaderData } from "@remix-run/react";
import { useState } from "react";
import { apiFetch } from "#app/lib/auth/client.ts";
import { requireUser } from "#app/lib/auth/index.server.ts";

export async function loader({ request, context }: LoaderFunctionArgs) {
  // not signed in: to /login, and back here afterwards
  const { user } = await requireUser(request, context);
  return json({ email: user.email });
}

export default function PrivatePage() {
  const { email } = useLoaderData<typeof loader>();
  const [answer, setAnswer] = useState("");
  async function askApi() {
    const response = await apiFetch("/api/examples/whoami");
    setAnswer(JSON.stringify(await response.json()));
  }
  return (
    <main>
      <h1>Hello, {email}</h1>
      <button type="button" onClick={() => void askApi()}>
        Ask the API who I am
      </button>
      <pre data-testid="api-answer">{answer}</pre>
    </main>
  );
}
