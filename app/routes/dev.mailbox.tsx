import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json } from "@remix-run/node";
import { useLoaderData } from "@remix-run/react";
import { pageTitle, rootOf, useT } from "#app/lib/i18n/intl.ts";
import { requireOutbox } from "#app/lib/ops/mailbox.server.ts";

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(rootOf(matches), "mailbox.title") }];

export async function loader({ context }: LoaderFunctionArgs) {
  const messages = requireOutbox(context.app).list();
  return json(
    { messages, here: context.app.config.appUrl.origin },
    { headers: { "Cache-Control": "no-store", "Referrer-Policy": "no-referrer" } },
  );
}

/**
 * Splits text into plain runs and clickable links; a link to another node of the cluster
 * can also be opened here, to try a sign-in across nodes.
 */
function linkify(text: string, here: string, openHere: string) {
  return text.split(/(https?:\/\/\S+)/g).map((part, i) => {
    if (!/^https?:\/\//.test(part)) return <span key={i}>{part}</span>;
    const url = new URL(part);
    const local = url.origin === here ? null : `${here}${url.pathname}${url.search}`;
    return (
      <span key={i}>
        <a href={part} data-testid="mail-link">
          {part}
        </a>
        {local && (
          <>
            {" "}
            (
            <a href={local} data-testid="mail-link-here">
              {openHere}
            </a>
            )
          </>
        )}
      </span>
    );
  });
}

export default function Mailbox() {
  const t = useT();
  const { messages, here } = useLoaderData<typeof loader>();
  return (
    <main>
      <div className="card">
        <h1>{t("mailbox.title")}</h1>
        <p className="muted">
          {t("mailbox.body")} <a href="/dev/mailbox.json">/dev/mailbox.json</a>
        </p>
      </div>
      {messages.length === 0 && <p className="muted">{t("mailbox.empty")}</p>}
      {messages.map((m, i) => (
        <article className="mail" key={`${m.sentAt}-${i}`} data-testid="mail">
          <h2 className="mail-subject">{m.subject}</h2>
          <p className="muted">{t("mailbox.to", { to: m.to, sentAt: m.sentAt })}</p>
          <pre>{linkify(m.text, here, t("mailbox.openHere"))}</pre>
        </article>
      ))}
    </main>
  );
}
