import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json, redirect } from "@remix-run/node";
import { Form, Link, useActionData, useLoaderData } from "@remix-run/react";
import { ConfirmationCode } from "#app/components/confirmation-code.tsx";
import { lifecycleAction, refusal } from "#app/lib/accounts/lifecycle-action.server.ts";
import { pageTitle, rootOf, useT, type MessageId, type Said } from "#app/lib/i18n/intl.ts";
import { getServices } from "#app/lib/services.server.ts";
import { normaliseEmail } from "#app/lib/validation.server.ts";
import { requireUser } from "#app/lib/auth/index.server.ts";

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(rootOf(matches), "changeEmail.title") }];

export async function loader({ request, context }: LoaderFunctionArgs) {
  const services = getServices(context.app);
  const { user } = await requireUser(request, context);
  const url = new URL(request.url);
  return json(
    { email: user.email, pending: services.lifecycle.pendingAddress(user) ?? null, sent: url.searchParams.has("sent") },
    { headers: { "Cache-Control": "no-store" } },
  );
}

/** Ask for a new address (a link and code go to it, in this request's language), or finish the change with the code. */
export async function action(args: ActionFunctionArgs) {
  return lifecycleAction(args, "email-change", async (services, user, form, locale) => {
    if (form.get("intent") === "code") {
      await services.lifecycle.confirmAddressChange(
        user,
        { code: String(form.get("code") ?? "").slice(0, 32) },
        locale,
      );
      return redirect("/account?addressChanged=1");
    }
    const email = normaliseEmail(form.get("email"));
    if (!email.ok) return refusal({ id: `email.error.${email.problem}` as MessageId, values: { max: 254 } }, 400);
    await services.lifecycle.requestAddressChange(user, email.email, locale);
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
  const t = useT();
  const { email, pending, sent } = useLoaderData<typeof loader>();
  const refused = useActionData<{ error: Said }>();
  return (
    <main>
      <div className="card">
        <h1>{t("changeEmail.title")}</h1>
        {refused?.error && (
          <p id="change-error" className="error" role="alert" data-testid="lifecycle-problem">
            {t(refused.error.id, refused.error.values)}
          </p>
        )}
        {pending ? (
          <p className="notice" role="status">
            {sent && !refused
              ? t("changeEmail.sent", { email: pending })
              : t("changeEmail.pending", { email: pending })}
          </p>
        ) : (
          <p>{t("changeEmail.current", { email })}</p>
        )}
        {pending && (
          <Form method="post" noValidate>
            <input type="hidden" name="intent" value="code" />
            <label htmlFor="code">{t("lifecycle.codeLabel", { email: pending })}</label>
            <ConfirmationCode
              id="code"
              refused={refused?.error}
              describedBy={refused?.error ? "change-error" : undefined}
            />
            <div className="row">
              <button type="submit">{t("lifecycle.confirmAddress")}</button>
            </div>
          </Form>
        )}
        <Form method="post" className="spaced">
          <label htmlFor="email">{t("lifecycle.newAddress")}</label>
          <input id="email" name="email" type="email" autoComplete="email" autoCapitalize="none" required />
          <div className="row">
            <button type="submit" className={pending ? "secondary" : undefined}>
              {pending ? t("changeEmail.sendOther") : t("changeEmail.send")}
            </button>
            <Link to="/account">{t("changeEmail.back")}</Link>
          </div>
        </Form>
      </div>
    </main>
  );
}
