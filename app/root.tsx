import type { LinksFunction, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json } from "@remix-run/node";
import {
  Form,
  isRouteErrorResponse,
  Link,
  Links,
  Meta,
  Outlet,
  Scripts,
  ScrollRestoration,
  useLocation,
  useRouteError,
  useRouteLoaderData,
} from "@remix-run/react";
import { useRef, type ReactNode } from "react";
import { RawIntlProvider } from "react-intl";
import { useNonce } from "#app/lib/nonce.tsx";
import { ENGLISH } from "#app/lib/i18n/catalogs.ts";
import { intlFor, pageTitle, rootOf, useT, type MessageId, type Said } from "#app/lib/i18n/intl.ts";
import { DEFAULT_LOCALE, languageName, LOCALES, localeOf } from "#app/lib/i18n/locales.ts";
import { brandStylesheet } from "#app/lib/brand.ts";
import styles from "./styles.css?url";

export const links: LinksFunction = () => [
  { rel: "stylesheet", href: styles },
  { rel: "icon", href: "/favicon.svg", type: "image/svg+xml" },
];

/** The page's language and the operator's brand: read per request from headers and settings, nothing loaded. */
export async function loader({ request, context }: LoaderFunctionArgs) {
  const { brand } = context.app.config;
  return json({
    locale: localeOf(request),
    brand: { name: brand.name, logoUrl: brand.logoUrl ?? null, stylesheet: brandStylesheet(brand)?.href ?? null },
  });
}

const FALLBACK = { locale: DEFAULT_LOCALE, brand: { name: "PwdlessGs", logoUrl: null, stylesheet: null } };

/** Root data, also under the error boundary (where the loader may not have run). */
export function useRootData() {
  return useRouteLoaderData<typeof loader>("root") ?? FALLBACK;
}

function LanguageSwitcher({ locale }: { locale: string }) {
  const t = useT();
  const location = useLocation();
  const form = useRef<HTMLFormElement>(null);
  return (
    // a document POST: the whole page comes back in the new language; works without JavaScript
    <Form method="post" action="/locale" reloadDocument className="switcher" ref={form}>
      <input type="hidden" name="back" value={`${location.pathname}${location.search}`} />
      <label htmlFor="locale-select" className="visually-hidden">
        {t("language.label")}
      </label>
      <select id="locale-select" name="locale" defaultValue={locale} onChange={() => form.current?.requestSubmit()}>
        {LOCALES.map((l) => (
          <option key={l} value={l} lang={l}>
            {languageName(l)}
          </option>
        ))}
      </select>
      <noscript>
        <button type="submit" className="secondary small">
          {t("language.change")}
        </button>
      </noscript>
    </Form>
  );
}

function Header() {
  const t = useT();
  const { brand, locale } = useRootData();
  return (
    <header className="top">
      <Link to="/" className="brand">
        {brand.logoUrl && <img src={brand.logoUrl} alt="" className="logo" />}
        <span>{brand.name}</span>
      </Link>
      <nav aria-label={t("nav.main")}>
        <Link to="/account">{t("nav.account")}</Link>
        <LanguageSwitcher locale={locale} />
      </nav>
    </header>
  );
}

export function Layout({ children }: { children: ReactNode }) {
  const nonce = useNonce();
  const { locale, brand } = useRootData();
  return (
    <html lang={locale}>
      <head>
        <meta charSet="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="color-scheme" content="light dark" />
        <Meta />
        <Links />
        {brand.stylesheet && <link rel="stylesheet" href={brand.stylesheet} />}
      </head>
      <body>
        <RawIntlProvider value={intlFor(locale)}>
          <Header />
          {children}
        </RawIntlProvider>
        <ScrollRestoration nonce={nonce} />
        <Scripts nonce={nonce} />
      </body>
    </html>
  );
}

export default function App() {
  return <Outlet />;
}

/** The title of a page without its own, and of the error pages (a 404 has a title too). */
export const meta: MetaFunction<typeof loader> = ({ data, error, matches }) => {
  const root = data ?? (rootOf(matches) as typeof FALLBACK | undefined) ?? FALLBACK;
  if (!error) return [{ title: root.brand.name }];
  const status = isRouteErrorResponse(error) ? error.status : 500;
  const id =
    status === 404
      ? "error.404.title"
      : status === 403
        ? "error.403.title"
        : status < 500
          ? "error.4xx.title"
          : "error.5xx.title";
  return [{ title: pageTitle(root, id) }];
};

/**
 * What a loader's refusal says, when it threw one of our messages with its status
 * (`throw json({ id: "admin.notAdmin" } satisfies Said, { status: 403 })`); anything else says nothing.
 */
function saidIn(data: unknown): Said | undefined {
  if (typeof data !== "object" || data === null) return undefined;
  const { id, values } = data as { id?: unknown; values?: unknown };
  if (typeof id !== "string" || !Object.hasOwn(ENGLISH, id)) return undefined;
  return typeof values === "object" && values !== null
    ? { id: id as MessageId, values: values as Said["values"] }
    : { id: id as MessageId };
}

/** Every unexpected failure ends here: a plain page with a title, never a stack trace. */
export function ErrorBoundary() {
  const error = useRouteError();
  const t = useT();
  const status = isRouteErrorResponse(error) ? error.status : 500;
  const title =
    status === 404
      ? t("error.404.title")
      : status === 403
        ? t("error.403.title")
        : status < 500
          ? t("error.4xx.title")
          : t("error.5xx.title");
  const said = isRouteErrorResponse(error) && status < 500 ? saidIn(error.data) : undefined;
  const text = said
    ? t(said.id, said.values)
    : status === 404
      ? t("error.404.body")
      : status < 500
        ? t("error.4xx.body")
        : t("error.5xx.body");
  return (
    <main>
      <div className="card">
        <h1>{title}</h1>
        <p>{text}</p>
        <p className="row">
          <Link className="button" to="/login">
            {t("nav.signIn")}
          </Link>
          <Link to="/">{t("error.home")}</Link>
        </p>
      </div>
    </main>
  );
}
