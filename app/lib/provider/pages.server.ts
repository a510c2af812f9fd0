/**
 * The pages the OpenID provider shows people (consent, the device code, sign-out, problems), in the
 * app's own layout, stylesheet, brand and language (the request's, as every page of ours), so they
 * look like /login. Plain HTML with no script: the app's Content-Security-Policy holds unchanged.
 * Every value is escaped; every word comes from the catalogs in app/locales/.
 */
import type { IncomingMessage } from "node:http";
import type { AppConfig } from "#app/lib/context.server.ts";
import { brandStylesheet } from "#app/lib/brand.ts";
import type { MessageId } from "#app/lib/i18n/catalogs.ts";
import { translator, type Translate } from "#app/lib/i18n/intl.ts";
import { languageName, localeOf, LOCALES } from "#app/lib/i18n/locales.ts";
import styles from "../../styles.css?url";
import { headersOf } from "./grants.server";
import { ROUTES } from "./paths.server";

/** Who a page is for: its language's words and the operator's brand, and where the page is. */
export interface PageContext {
  t: Translate;
  locale: string;
  brand: { name: string; logoUrl?: string; stylesheet?: string };
  /** where the language switcher comes back to: this page, or /device for the device page's answers */
  here: string;
}

export function pageContext(req: IncomingMessage, config: Pick<AppConfig, "brand">): PageContext {
  const locale = localeOf(headersOf(req));
  const { brand } = config;
  const url = req.url ?? "/";
  const path = url.split("?")[0];
  // a page answering a POST cannot be asked for again: the switcher goes back to where its form was
  const here = req.method === "GET" ? url : path === ROUTES.code_verification ? path : "/";
  return {
    t: translator(locale),
    locale,
    brand: { name: brand.name, logoUrl: brand.logoUrl, stylesheet: brandStylesheet(brand)?.href },
    here,
  };
}

const escape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The language switcher of every page (root.tsx's), without script: a select and a button. */
function switcher(page: PageContext): string {
  const { t } = page;
  const options = LOCALES.map(
    (l) =>
      `<option value="${l}" lang="${l}"${l === page.locale ? " selected" : ""}>${escape(languageName(l))}</option>`,
  ).join("");
  return `<form method="post" action="/locale" class="switcher"><input type="hidden" name="back" value="${escape(page.here)}"><label for="locale-select" class="visually-hidden">${escape(t("language.label"))}</label><select id="locale-select" name="locale">${options}</select><button type="submit" class="secondary small">${escape(t("language.change"))}</button></form>`;
}

function layout(page: PageContext, title: string, body: string): string {
  const { t, brand } = page;
  const logo = brand.logoUrl ? `<img src="${escape(brand.logoUrl)}" alt="" class="logo">` : "";
  const brandCss = brand.stylesheet ? `<link rel="stylesheet" href="${escape(brand.stylesheet)}">` : "";
  return `<!DOCTYPE html><html lang="${escape(page.locale)}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="color-scheme" content="light dark"><title>${escape(title)} · ${escape(brand.name)}</title><link rel="stylesheet" href="${escape(styles)}">${brandCss}<link rel="icon" href="/favicon.svg" type="image/svg+xml"></head><body><header class="top"><a href="/" class="brand">${logo}<span>${escape(brand.name)}</span></a><nav aria-label="${escape(t("nav.main"))}"><a href="/account">${escape(t("nav.account"))}</a>${switcher(page)}</nav></header><main>${body}</main></body></html>`;
}

const SCOPES: Record<string, MessageId> = {
  openid: "provider.scope.openid",
  email: "provider.scope.email",
  profile: "provider.scope.profile",
  offline_access: "provider.scope.offline_access",
};

export function consentPage(
  page: PageContext,
  input: { uid: string; client: string; email: string; scopes: string[] },
): string {
  const { t } = page;
  const items = input.scopes.map((s) => `<li>${escape(SCOPES[s] ? t(SCOPES[s]) : s)}</li>`).join("");
  const action = `/oidc/interaction/${encodeURIComponent(input.uid)}/consent`;
  const title = t("provider.consent.title", { app: input.client });
  return layout(
    page,
    title,
    `<div class="card"><h1>${escape(title)}</h1>
<p class="muted">${escape(t("provider.consent.signedInAs", { email: input.email }))}</p>
<p>${escape(t("provider.consent.asks", { app: input.client }))}</p><ul data-testid="consent-scopes">${items}</ul>
<form method="post" action="${action}" class="row"><button type="submit" name="decision" value="allow">${escape(t("provider.consent.allow"))}</button>
<button type="submit" name="decision" value="deny" class="secondary">${escape(t("provider.consent.deny"))}</button></form>
<p class="muted">${escape(t("provider.consent.later"))}</p></div>`,
  );
}

/** The device page's words for oidc-provider's re-render errors (by their class name). */
const DEVICE_PROBLEMS: Record<string, MessageId> = {
  NoCodeError: "provider.device.error.empty",
  NotFoundError: "provider.device.error.wrong",
  ExpiredError: "provider.device.error.expired",
  AlreadyUsedError: "provider.device.error.used",
  AbortedError: "provider.device.error.aborted",
};

export function deviceCodePage(
  page: PageContext,
  input: { action: string; xsrf: string; problem?: string; userCode?: string },
): string {
  const { t } = page;
  const problem = input.problem ? t(DEVICE_PROBLEMS[input.problem] ?? "provider.device.error.other") : undefined;
  const error = problem ? `<p id="code-error" class="error" role="alert">${escape(problem)}</p>` : "";
  return layout(
    page,
    t("provider.device.title"),
    `<div class="card"><h1>${escape(t("provider.device.title"))}</h1>
<p class="muted">${escape(t("provider.device.intro"))}</p>
<form method="post" action="${escape(input.action)}" novalidate>
<input type="hidden" name="xsrf" value="${escape(input.xsrf)}">
<label for="user_code">${escape(t("provider.device.label"))}</label>
<input id="user_code" name="user_code" type="text" autocomplete="off" autocapitalize="characters" spellcheck="false" required value="${escape(input.userCode ?? "")}"${problem ? ' aria-invalid="true" aria-describedby="code-error"' : ""}>
${error}<div class="row"><button type="submit">${escape(t("provider.device.continue"))}</button></div></form></div>`,
  );
}

export function deviceConfirmPage(
  page: PageContext,
  input: { action: string; xsrf: string; client: string; userCode: string },
): string {
  const { t } = page;
  const hidden = `<input type="hidden" name="xsrf" value="${escape(input.xsrf)}"><input type="hidden" name="user_code" value="${escape(input.userCode)}">`;
  const title = t("provider.device.confirmTitle", { app: input.client });
  return layout(
    page,
    title,
    `<div class="card"><h1>${escape(title)}</h1>
<p>${escape(t("provider.device.check"))}</p><p class="mono" data-testid="device-user-code"><strong>${escape(input.userCode)}</strong></p>
<p class="muted">${escape(t("provider.device.warning"))}</p>
<form method="post" action="${escape(input.action)}" class="row">${hidden}<button type="submit" name="confirm" value="yes">${escape(t("provider.device.continue"))}</button>
<button type="submit" name="abort" value="yes" class="secondary">${escape(t("provider.device.cancel"))}</button></form></div>`,
  );
}

export function deviceDonePage(page: PageContext, client: string): string {
  const { t } = page;
  return layout(
    page,
    t("provider.device.doneTitle"),
    `<div class="card"><h1>${escape(t("provider.device.doneTitle"))}</h1><p>${escape(t("provider.device.done", { app: client }))}</p>
<p><a href="/account">${escape(t("nav.account"))}</a></p></div>`,
  );
}

export function logoutPage(
  page: PageContext,
  input: { action: string; xsrf: string; client: string | undefined },
): string {
  const { t, brand } = page;
  const who = input.client ? t("provider.logout.asked", { app: input.client }) : t("provider.logout.askedUnknown");
  const title = t("provider.logout.title", { brand: brand.name });
  return layout(
    page,
    title,
    `<div class="card"><h1>${escape(title)}</h1><p>${escape(who)}</p>
<form method="post" action="${escape(input.action)}" class="row"><input type="hidden" name="xsrf" value="${escape(input.xsrf)}">
<button type="submit" name="logout" value="yes">${escape(t("provider.logout.signOut"))}</button>
<button type="submit" class="secondary">${escape(t("provider.logout.stay"))}</button></form>
<p class="muted">${escape(t("provider.logout.explain"))}</p></div>`,
  );
}

export type Problem =
  | "expired"
  | "refused"
  | "unknown-app"
  | "unregistered-redirect"
  | "not-found"
  | "not-allowed"
  | "unavailable"
  | "failed";

const PROBLEMS: Record<Problem, [MessageId, MessageId]> = {
  expired: ["provider.expired.title", "provider.expired.body"],
  refused: ["provider.refused.title", "provider.refused.body"],
  "unknown-app": ["provider.refused.title", "provider.refused.unknownApp"],
  "unregistered-redirect": ["provider.refused.title", "provider.refused.unregisteredRedirect"],
  "not-found": ["error.404.title", "error.404.body"],
  "not-allowed": ["error.4xx.title", "error.4xx.body"],
  unavailable: ["provider.unavailable.title", "provider.unavailable.body"],
  failed: ["error.5xx.title", "error.5xx.body"],
};

/** A request the provider cannot go on with: what happened, and what to do next (never a redirect to an unchecked URI). */
export function problemPage(page: PageContext, problem: Problem, detail?: string): string {
  const { t, brand } = page;
  const [title, body] = PROBLEMS[problem];
  const details = detail ? `<p class="muted">${escape(t("provider.details"))} <code>${escape(detail)}</code></p>` : "";
  return layout(
    page,
    t(title),
    `<div class="card"><h1>${escape(t(title))}</h1><p>${escape(t(body, { brand: brand.name }))}</p>${details}
<p><a href="/account">${escape(t("nav.account"))}</a> · <a href="/login">${escape(t("nav.signIn"))}</a></p></div>`,
  );
}
