import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json, redirect } from "@remix-run/node";
import { Form, Link, useActionData, useLoaderData } from "@remix-run/react";
import { lifecycleAction } from "#app/lib/accounts/lifecycle-action.server.ts";
import { pageTitle, rootOf, useT, type Said } from "#app/lib/i18n/intl.ts";
import { getServices } from "#app/lib/services.server.ts";
import { requireUser } from "#app/lib/auth/index.server.ts";

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(rootOf(matches), "confirmEmail.title") }];

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
  return lifecycleAction(args, "email-change", async (services, user, form, locale) => {
    await services.lifecycle.confirmAddressChange(user, { token: String(form.get("token") ?? "") }, locale);
    return redirect("/account?addressChanged=1");
  });
}

export default function ConfirmEmail() {
  const t = useT();
  const { token, to } = useLoaderData<typeof loader>();
  const refused = useActionData<{ error: Said }>();
  return (
    <main>
      <div className="card">
        <h1>{t("confirmEmail.title")}</h1>
        {refused?.error ? (
          <>
            <p className="error" role="alert" data-testid="lifecycle-problem">
              {t(refused.error.id, refused.error.values)}
            </p>
            <p className="row">
              <Link className="button" to="/account/email">
                {t("confirmEmail.again")}
              </Link>
              <Link to="/account">{t("changeEmail.back")}</Link>
            </p>
          </>
        ) : (
          <>
            <p>{to ? t("confirmEmail.question", { email: to }) : t("confirmEmail.questionUnknown")}</p>
            <Form method="post" className="row">
              <input type="hidden" name="token" value={token} />
              <button type="submit">{t("confirmEmail.button")}</button>
              <Link to="/account">{t("changeEmail.back")}</Link>
            </Form>
          </>
        )}
      </div>
    </main>
  );
}
