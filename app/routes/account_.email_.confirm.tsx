import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json, redirect } from "@remix-run/node";
import { Form, Link, useActionData, useLoaderData } from "@remix-run/react";
import { lifecycleAction } from "#app/lib/accounts/lifecycle-action.server.ts";
import { getServices } from "#app/lib/services.server.ts";
import { requireUser } from "#app/lib/auth/index.server.ts";

export const meta: MetaFunction = () => [{ title: "Confirm your new address · PwdlessGs" }];

/** Mail scanners open links: GET only asks; the button POSTs. The signed-in user must be the one who asked. */
export async function loader({ request, context }: LoaderFunctionArgs) {
  const services = getServices(context.app);
  const { user } = await requireUser(request, context);
  const token = new URL(request.url).searchParams.get("token") ?? "";
  return json(
    { token, to: services.lifecycle.pendingAddress(user) ?? null },
    { headers: { "Cache-Control": "no-store", "Referrer-Policy": "no-referrer" } },
  );
}

export async function action(args: ActionFunctionArgs) {
  return lifecycleAction(args, "email-change", async (services, user, form) => {
    await services.lifecycle.confirmAddressChange(user, { token: String(form.get("token") ?? "") });
    return redirect("/account?addressChanged=1");
  });
}

export default function ConfirmEmail() {
  const { token, to } = useLoaderData<typeof loader>();
  const failed = useActionData<typeof action>();
  return (
    <main>
      <div className="card">
        <h1>Confirm your new address</h1>
        {failed?.error && (
          <p className="error" role="alert">
            {failed.error}
          </p>
        )}
        {to ? <p>Use {to} to sign in from now on?</p> : <p>Use the new address to sign in from now on?</p>}
        <Form method="post" className="row">
          <input type="hidden" name="token" value={token} />
          <button type="submit">Use this address</button>
        </Form>
        <p>
          <Link to="/account">Back to your account</Link>
        </p>
      </div>
    </main>
  );
}
