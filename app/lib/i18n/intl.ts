/**
 * One FormatJS `IntlShape` per language, made on first use and kept: its message formatters are
 * parsed once and memoised, so a page or an email formats with no per-request set-up. Pages use
 * `useT()`; server code (emails, refusals) uses `translator(locale)`.
 */
import { createElement, Fragment, type ReactNode } from "react";
import { createIntl, createIntlCache, useIntl, type IntlShape } from "react-intl";
import { CATALOGS, ENGLISH, type MessageId } from "./catalogs";
import { DEFAULT_LOCALE, type Locale } from "./locales";

export type { MessageId };
export type MessageValues = Record<string, string | number | Date>;
/** A message to show, named by id: what server code hands a page so the page can say it in its language. */
export type Said = { id: MessageId; values?: MessageValues };

const cache = createIntlCache();
const intls = new Map<Locale, IntlShape>();

export function intlFor(locale: Locale): IntlShape {
  let intl = intls.get(locale);
  if (!intl) {
    intl = createIntl(
      {
        locale,
        defaultLocale: DEFAULT_LOCALE,
        // English under every catalog: a string not translated yet is shown in English, not as its id
        messages: { ...ENGLISH, ...(CATALOGS[locale] ?? {}) },
        onError: (error) => {
          if (error.code !== "MISSING_TRANSLATION") console.error(error.message);
        },
      },
      cache,
    );
    intls.set(locale, intl);
  }
  return intl;
}

export type Translate = (id: MessageId, values?: MessageValues) => string;

export function translator(locale: Locale): Translate {
  const intl = intlFor(locale);
  return (id, values) => intl.formatMessage({ id }, values);
}

/** `t("login.title")` in a component: the page's language from the IntlProvider in root.tsx. */
export function useT(): Translate {
  const intl = useIntl();
  return (id, values) => intl.formatMessage({ id }, values);
}

/** `rich("account.sessions.signedIn", { when: <RelativeTime at={…} /> })`: a message with elements in it. */
export function useRich(): (id: MessageId, values: Record<string, ReactNode>) => ReactNode {
  const intl = useIntl();
  return (id, values) => {
    const parts = intl.formatMessage({ id }, values as Record<string, string>) as unknown;
    return Array.isArray(parts) ? createElement(Fragment, null, ...(parts as ReactNode[])) : (parts as ReactNode);
  };
}

/** A page's <title>: "Sign in · PwdlessGs", in the page's language (for a route's `meta`). */
export function pageTitle(
  root: { locale: Locale; brand: { name: string } } | undefined,
  id: MessageId,
  values?: MessageValues,
): string {
  const t = translator(root?.locale ?? DEFAULT_LOCALE);
  const appName = root?.brand.name ?? "PwdlessGs";
  return t("title.suffix", { title: t(id, values), appName });
}

/** The root's data from a route's `meta` arguments, for pageTitle. */
export function rootOf(matches: ReadonlyArray<{ id: string; data: unknown }>) {
  return matches.find((m) => m.id === "root")?.data as { locale: Locale; brand: { name: string } } | undefined;
}
