import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json } from "@remix-run/node";
import { useLoaderData } from "@remix-run/react";
import { requireOutbox } from "#app/lib/ops/mailbox.server.ts";

export const meta: MetaFunction = () => [{ title: "Development mailbox · PwdlessGs" }];

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
function linkify(text: string, here: string) {
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
              open on this node
            </a>
            )
          </>
        )}
      </span>
    );
  });
}

export default function Mailbox() {
  const { messages, here } = useLoaderData<typeof loader>();
  return (
    <main>
      <div className="card">
        <h1>Development mailbox</h1>
        <p className="muted">
          Local mode without <code>SMTP_URL</code>: the mail the nodes of this cluster would have sent, newest first. It
          exists only in memory and never in production. Also as JSON at{" "}
          <a href="/dev/mailbox.json">/dev/mailbox.json</a>.
        </p>
      </div>
      {messages.length === 0 && <p className="muted">No mail yet.</p>}
      {messages.map((m, i) => (
        <article className="mail" key={`${m.sentAt}-${i}`} data-testid="mail">
          <div>
            <strong>{m.subject}</strong>
          </div>
          <div className="muted">
            To {m.to} · {m.sentAt}
          </div>
          <pre>{linkify(m.text, here)}</pre>
        </article>
      ))}
    </main>
  );
}
