/**
 * Which languages the app speaks and how a request's language is chosen: the `pwdless_locale`
 * cookie (set by the switcher) first, then Accept-Language, then English. Runs on both sides.
 */
import { CATALOGS } from "./catalogs";

export type Locale = string;
export const DEFAULT_LOCALE: Locale = "en";
/** every catalog in app/locales/, English first: adding a language is adding its file */
export const LOCALES: readonly Locale[] = [
  DEFAULT_LOCALE,
  ...Object.keys(CATALOGS)
    .filter((l) => l !== DEFAULT_LOCALE)
    .sort(),
];
export const LOCALE_COOKIE = "pwdless_locale";

/** The catalog's own name for its language, for the switcher ("Deutsch", not "German"). */
export function languageName(locale: Locale): string {
  return CATALOGS[locale]?.["language.name"] ?? locale;
}

/** A supported locale for a tag such as "de-AT" or "EN", or undefined. */
export function supported(tag: string | null | undefined): Locale | undefined {
  if (!tag) return undefined;
  const lower = tag.trim().toLowerCase();
  if (!/^[a-z]{2,3}(-[a-z0-9]{1,8})*$/.test(lower)) return undefined;
  if (LOCALES.includes(lower)) return lower;
  const base = lower.split("-")[0]!;
  return LOCALES.includes(base) ? base : undefined;
}

/** The best supported locale in an Accept-Language header, by its q values (at most 20 entries read). */
export function fromAcceptLanguage(header: string | null | undefined): Locale | undefined {
  if (!header) return undefined;
  const wanted = header
    .slice(0, 1000)
    .split(",")
    .slice(0, 20)
    .map((part, index) => {
      const [tag, ...params] = part.trim().split(";");
      const q = params.map((p) => /^\s*q=([0-9.]+)\s*$/.exec(p)?.[1]).find(Boolean);
      return { tag: tag ?? "", q: q === undefined ? 1 : Number(q), index };
    })
    .filter((w) => w.q > 0 && Number.isFinite(w.q))
    .sort((a, b) => b.q - a.q || a.index - b.index);
  for (const w of wanted) {
    const locale = supported(w.tag);
    if (locale) return locale;
  }
  return undefined;
}

function cookieValue(cookieHeader: string | null | undefined, name: string): string | undefined {
  if (!cookieHeader) return undefined;
  for (const part of cookieHeader.split(";")) {
    const [key, ...rest] = part.split("=");
    if (key?.trim() === name) return rest.join("=").trim();
  }
  return undefined;
}

/** The request's language: the switcher's cookie, else Accept-Language, else English. */
export function localeOf(request: { headers: { get(name: string): string | null } }): Locale {
  return (
    supported(cookieValue(request.headers.get("Cookie"), LOCALE_COOKIE)) ??
    fromAcceptLanguage(request.headers.get("Accept-Language")) ??
    DEFAULT_LOCALE
  );
}
