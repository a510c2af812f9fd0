import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json, redirect } from "@remix-run/node";
import { Form, Link, useActionData, useLoaderData, useNavigation } from "@remix-run/react";
import { useState } from "react";
import { ConfirmationCode } from "#app/components/confirmation-code.tsx";
import { lifecycleAction } from "#app/lib/accounts/lifecycle-action.server.ts";
import { pageTitle, rootOf, useT, type MessageId, type Said } from "#app/lib/i18n/intl.ts";
import { getServices } from "#app/lib/services.server.ts";
import { deleteAccountWithPasskey, PasskeyProblem } from "#app/lib/sign-in/passkey/client.ts";
import { requireUser } from "#app/lib/auth/index.server.ts";

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(rootOf(matches), "deleteAccount.title") }];

export async function loader({ request, context }: LoaderFunctionArgs) {
  const services = getServices(context.app);
  const { user } = await requireUser(request, context);
  const hasPasskey = services.passkeyStore.listOf(services.users.idsOf(user)).length > 0;
  const pending = services.lifecycle.deletionPending(user);
  return json(
    {
      email: user.email,
      pending,
      sent: pending && new URL(request.url).searchParams.has("sent"),
      minutes: Math.round(services.linkTtlMs / 60_000),
      hasPasskey,
    },
    { headers: { "Cache-Control": "no-store" } },
  );
}

/**
 * Send a fresh code to the account's address (in this request's language), then delete with it:
 * everything goes, on every node. (Or confirm with a passkey instead: the page's button, through
 * /account/delete/passkey.)
 */
export async function action(args: ActionFunctionArgs) {
  return lifecycleAction(args, "delete", async (services, user, form, locale) => {
    if (form.get("intent") === "send-code") {
      await services.lifecycle.requestDeletion(user, locale);
      return redirect("/account/delete?sent=1");
    }
    services.lifecycle.deleteWithProof(user, { code: String(form.get("code") ?? "").slice(0, 32) }, locale);
    return redirect("/login?deleted=1", { headers: { "Set-Cookie": services.auth.clearCookie() } });
  });
}

export default function DeleteAccount() {
  const t = useT();
  const { email, pending, sent, minutes, hasPasskey } = useLoaderData<typeof loader>();
  const refused = useActionData<{ error: Said }>();
  const busy = useNavigation().state !== "idle";
  const [passkeyProblem, setPasskeyProblem] = useState<MessageId | null>(null);
  const [asking, setAsking] = useState(false);

  async function withPasskey() {
    setPasskeyProblem(null);
    setAsking(true);
    try {
      window.location.assign(await deleteAccountWithPasskey());
    } catch (error) {
      setPasskeyProblem(error instanceof PasskeyProblem ? error.id : "passkey.deleteFailed");
      setAsking(false);
    }
  }
  return (
    <main>
      <div className="card">
        <h1>{t("deleteAccount.title")}</h1>
        <p>{t("deleteAccount.body", { email })}</p>
        {refused?.error && (
          <p id="delete-error" className="error" role="alert" data-testid="lifecycle-problem">
            {t(refused.error.id, refused.error.values)}
          </p>
        )}
        {sent && !refused && (
          <p className="notice" role="status">
            {t("deleteAccount.sent", { email, minutes })}
          </p>
        )}
        {!pending && <p>{hasPasskey ? t("deleteAccount.how", { email }) : t("deleteAccount.howCode", { email })}</p>}
        {pending && (
          <Form method="post" noValidate className="confirm">
            <label htmlFor="code">{t("lifecycle.codeLabel", { email })}</label>
            <ConfirmationCode
              id="code"
              refused={refused?.error}
              describedBy={refused?.error ? "delete-error" : undefined}
            />
            <div className="row">
              <button type="submit" className="danger" disabled={busy}>
                {t("deleteAccount.button")}
              </button>
            </div>
          </Form>
        )}
        {hasPasskey && (
          <div className="row">
            <button type="button" className="danger" disabled={asking} onClick={() => void withPasskey()}>
              {asking ? t("deleteAccount.waiting") : t("deleteAccount.withPasskey")}
            </button>
          </div>
        )}
        {passkeyProblem && (
          <p className="error" role="alert" data-testid="passkey-problem">
            {t(passkeyProblem)}
          </p>
        )}
        <Form method="post" className="row">
          <input type="hidden" name="intent" value="send-code" />
          <button type="submit" className="secondary" disabled={busy}>
            {pending ? t("deleteAccount.sendAgain") : t("deleteAccount.sendCode")}
          </button>
          <Link to="/account">{t("deleteAccount.keep")}</Link>
        </Form>
      </div>
    </main>
  );
}
