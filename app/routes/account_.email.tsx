import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json, redirect } from "@remix-run/node";
import { Form, Link, useActionData, useLoaderData } from "@remix-run/react";
import { lifecycleAction } from "#app/lib/accounts/lifecycle-action.server.ts";
import { getServices } from "#app/lib/services.server.ts";
import { normaliseEmail } from "#app/lib/validation.server.ts";
import { requireUser } from "#app/lib/auth/index.server.ts";

export const meta: MetaFunction = () => [{ title: "Change your address · PwdlessGs" }];

export async function loader({ request, context }: LoaderFunctionArgs) {
  const services = getServices(context.app);
  const { user } = await requireUser(request, context);
  const url = new URL(request.url);
  return json(
    { pending: services.lifecycle.pendingAddress(user) ?? null, sent: url.searchParams.has("sent") },
    { headers: { "Cache-Control": "no-store" } },
  );
}

/** Ask for a new address (a link and code go to it), or finish the change with the code. */
export async function action(args: ActionFunctionArgs) {
  return lifecycleAction(args, "email-change", async (services, user, form) => {
    if (form.get("intent") === "code") {
      await services.lifecycle.confirmAddressChange(user, { code: String(form.get("code") ?? "").slice(0, 32) });
      return redirect("/account?addressChanged=1");
    }
    const email = normaliseEmail(form.get("email"));
    if (!email.ok) return json({ error: email.message }, { status: 400 });
    await services.lifecycle.requestAddressChange(user, email.email);
    services.audit.record("link-sent", {
      uid: user.id,
      email: email.email,
      ip: args.context.clientIp,
      purpose: "email-change",
    });
    return redirect("/account/email?sent=1");
  });
}

export default function ChangeEmail() {
  const { pending, sent } = useLoaderData<typeof loader>();
  const failed = useActionData<typeof action>();
  return (
    <main>
      <div className="card">
        <h1>Change your address</h1>
        {failed?.error && (
          <p className="error" role="alert">
            {failed.error}
          </p>
        )}
        {sent && pending && (
          <p className="notice" role="status">
            We sent a link and a code to {pending}. Open the link, or type the code here. Your address changes only
            then.
          </p>
        )}
        {pending && (
          <Form method="post" className="row">
            <input type="hidden" name="intent" value="code" />
            <label htmlFor="code">Code</label>
            <input id="code" name="code" type="text" inputMode="numeric" autoComplete="one-time-code" required />
            <button type="submit">Confirm the new address</button>
          </Form>
        )}
        <Form method="post" className="row">
          <label htmlFor="email">New address</label>
          <input id="email" name="email" type="email" autoComplete="email" required />
          <button type="submit" className="secondary">
            Send a confirmation
          </button>
        </Form>
        <p>
          <Link to="/account">Back to your account</Link>
        </p>
      </div>
    </main>
  );
}
