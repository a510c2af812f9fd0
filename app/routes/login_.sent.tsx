import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json } from "@remix-run/node";
import { Form, Link, useLoaderData } from "@remix-run/react";
import { getServices } from "#app/lib/services.server.ts";

export const meta: MetaFunction = () => [{ title: "Check your email · PwdlessGs" }];

export async function loader({ request, context }: LoaderFunctionArgs) {
  const services = getServices(context.app);
  const session = await services.linkCookie.getSession(request.headers.get("Cookie"));
  const email = session.get("auth:email");
  return json(
    {
      email: typeof email === "string" ? email : null,
      minutes: Math.round(context.app.config.linkTtlMs / 60_000),
      outbox: Boolean(services.outbox),
    },
    { headers: { "Cache-Control": "no-store" } },
  );
}

export default function LinkSent() {
  const { email, minutes, outbox } = useLoaderData<typeof loader>();
  return (
    <main>
      <div className="card">
        <h1>Check your email</h1>
        <p>
          If <strong>{email ?? "that address"}</strong> can receive mail, a sign-in link is on its way. It works once,
          for {minutes} minutes, in this browser.
        </p>
        {outbox && (
          <p className="notice">
            Local mode: no SMTP server is set, so the email is in the <Link to="/dev/mailbox">development mailbox</Link>
            .
          </p>
        )}
        {email && (
          <Form method="post" action="/login" className="row">
            <input type="hidden" name="email" value={email} />
            <button type="submit" className="secondary">
              Send another link
            </button>
            <Link to="/login">Use a different address</Link>
          </Form>
        )}
      </div>
    </main>
  );
}
