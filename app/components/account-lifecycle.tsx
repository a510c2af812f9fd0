/** The account page's lifecycle part: a new address, download my data, delete the account (its own file: account.tsx stays small). */
import { Form, Link } from "@remix-run/react";
import { useT } from "#app/lib/i18n/intl.ts";
import { ConfirmationCode } from "./confirmation-code";

export function AccountLifecycle({ pendingAddress }: { pendingAddress: string | null }) {
  const t = useT();
  return (
    <section className="card" aria-labelledby="lifecycle-heading">
      <h2 id="lifecycle-heading">{t("lifecycle.title")}</h2>
      <Form method="post" action="/account/email">
        <label htmlFor="new-email">{t("lifecycle.newAddress")}</label>
        <p id="new-email-hint" className="muted small">
          {t("lifecycle.changeHint")}
        </p>
        <div className="row tight">
          <input
            id="new-email"
            name="email"
            type="email"
            autoComplete="email"
            autoCapitalize="none"
            required
            aria-describedby="new-email-hint"
          />
          <button type="submit" className="secondary">
            {t("lifecycle.changeAddress")}
          </button>
        </div>
      </Form>
      {pendingAddress && (
        <Form method="post" action="/account/email" className="spaced" noValidate>
          <input type="hidden" name="intent" value="code" />
          <label htmlFor="email-code">{t("lifecycle.codeLabel", { email: pendingAddress })}</label>
          <div className="row tight">
            <ConfirmationCode id="email-code" />
            <button type="submit">{t("lifecycle.confirmAddress")}</button>
          </div>
        </Form>
      )}
      <p className="muted spaced">{t("lifecycle.dataHint")}</p>
      <div className="row">
        <a className="button secondary" href="/account/data" download>
          {t("lifecycle.download")}
        </a>
        <Link className="button danger" to="/account/delete">
          {t("lifecycle.delete")}
        </Link>
      </div>
    </section>
  );
}
