import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json, redirect } from "@remix-run/node";
import { Form, Link, useActionData, useLoaderData } from "@remix-run/react";
import { useState } from "react";
import { lifecycleAction } from "#app/lib/accounts/lifecycle-action.server.ts";
import { getServices } from "#app/lib/services.server.ts";
import { deleteAccountWithPasskey } from "#app/lib/sign-in/passkey/client.ts";
import { requireUser } from "#app/lib/auth/index.server.ts";

export const meta: MetaFunction = () => [{ title: "Delete your account · PwdlessGs" }];

export async function loader({ request, context }: LoaderFunctionArgs) {
  const services = getServices(context.app);
  const { user } = await requireUser(request, context);
  const hasPasskey = services.passkeyStore.listOf(services.users.idsOf(user)).length > 0;
  return json(
    { email: user.email, pending: services.lifecycle.deletionPending(user), hasPasskey },
    { headers: { "Cache-Control": "no-store" } },
  );
}

/**
 * Send a fresh code to the account's address, then delete with it: everything goes, on every node.
 * (Or confirm with a passkey instead: the page's button, through /account/delete/passkey.)
 */
export async function action(args: ActionFunctionArgs) {
  return lifecycleAction(args, "delete", async (services, user, form) => {
    if (form.get("intent") === "send-code") {
      await services.lifecycle.requestDeletion(user);
      return redirect("/account/delete");
    }
    services.lifecycle.deleteWithProof(user, { code: String(form.get("code") ?? "").slice(0, 32) });
    return redirect("/login?deleted=1", { headers: { "Set-Cookie": services.auth.clearCookie() } });
  });
}

export default function DeleteAccount() {
  const { email, pending, hasPasskey } = useLoaderData<typeof loader>();
  const failed = useActionData<typeof action>();
  const [passkeyProblem, setPasskeyProblem] = useState<string | null>(null);

  async function withPasskey() {
    setPasskeyProblem(null);
    try {
      window.location.assign(await deleteAccountWithPasskey());
    } catch (error) {
      setPasskeyProblem(error instanceof Error ? error.message : "The passkey did not confirm it is you.");
    }
  }
  return (
    <main>
      <div className="card">
        <h1>Delete your account</h1>
        <p>
          This deletes the account for {email} and everything kept about it: sessions, passkeys and sign-in history, on
          every server. It cannot be undone.
        </p>
        {failed?.error && (
          <p className="error" role="alert">
            {failed.error}
          </p>
        )}
        {pending ? (
          <Form method="post" className="row">
            <label htmlFor="code">Code sent to {email}</label>
            <input id="code" name="code" type="text" inputMode="numeric" autoComplete="one-time-code" required />
            <button type="submit" className="danger">
              Delete my account
            </button>
          </Form>
        ) : null}
        {hasPasskey && (
          <div className="row">
            <button type="button" className="danger" onClick={() => void withPasskey()}>
              Delete my account with a passkey
            </button>
          </div>
        )}
        {passkeyProblem && (
          <p className="error" role="alert" data-testid="passkey-problem">
            {passkeyProblem}
          </p>
        )}
        <Form method="post" className="row">
          <input type="hidden" name="intent" value="send-code" />
          <button type="submit" className="secondary">
            {pending ? "Send a new code" : "Email me a code to confirm"}
          </button>
        </Form>
        <p>
          <Link to="/account">Keep my account</Link>
        </p>
      </div>
    </main>
  );
}
