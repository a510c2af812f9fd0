import type { LinksFunction } from "@remix-run/node";
import {
  isRouteErrorResponse,
  Link,
  Links,
  Meta,
  Outlet,
  Scripts,
  ScrollRestoration,
  useRouteError,
} from "@remix-run/react";
import type { ReactNode } from "react";
import { useNonce } from "#app/lib/nonce.tsx";
import styles from "./styles.css?url";

export const links: LinksFunction = () => [
  { rel: "stylesheet", href: styles },
  { rel: "icon", href: "/favicon.svg", type: "image/svg+xml" },
];

export function Layout({ children }: { children: ReactNode }) {
  const nonce = useNonce();
  return (
    <html lang="en">
      <head>
        <meta charSet="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <Meta />
        <Links />
      </head>
      <body>
        <header className="top">
          <Link to="/" className="brand">
            PwdlessGs
          </Link>
          <nav>
            <Link to="/account">Account</Link>
          </nav>
        </header>
        {children}
        <ScrollRestoration nonce={nonce} />
        <Scripts nonce={nonce} />
      </body>
    </html>
  );
}

export default function App() {
  return <Outlet />;
}

/** Every unexpected failure ends here: a plain page, never a stack trace. */
export function ErrorBoundary() {
  const error = useRouteError();
  const status = isRouteErrorResponse(error) ? error.status : 500;
  const title =
    status === 404
      ? "Page not found"
      : status === 403
        ? "Not allowed"
        : status < 500
          ? "That did not work"
          : "Something went wrong";
  const text =
    status === 404
      ? "There is nothing at this address."
      : status < 500
        ? "The request could not be handled."
        : "An unexpected error happened on our side. It has been logged; please try again.";
  return (
    <main>
      <div className="card">
        <h1>{title}</h1>
        <p>{text}</p>
        <p>
          <Link to="/">Home</Link> · <Link to="/login">Sign in</Link>
        </p>
      </div>
    </main>
  );
}
