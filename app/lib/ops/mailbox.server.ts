import type { AppContext } from "#app/lib/context.server.ts";
import type { Outbox } from "./mail.server";
import { getServices } from "#app/lib/services.server.ts";

/** The development outbox, or a 404 wherever it must not exist (production, or SMTP configured). */
export function requireOutbox(ctx: AppContext): Outbox {
  const { outbox } = getServices(ctx);
  if (ctx.config.mode === "production" || !outbox) {
    throw new Response("Not Found", { status: 404 });
  }
  return outbox;
}
