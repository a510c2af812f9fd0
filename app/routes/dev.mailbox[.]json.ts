import type { LoaderFunctionArgs } from "@remix-run/node";
import { json } from "@remix-run/node";
import { requireOutbox } from "#app/lib/ops/mailbox.server.ts";

export async function loader({ context }: LoaderFunctionArgs) {
  const messages = requireOutbox(context.app).list();
  return json(
    { messages: messages.map(({ to, subject, text, html, sentAt }) => ({ to, subject, text, html, sentAt })) },
    { headers: { "Cache-Control": "no-store" } },
  );
}
