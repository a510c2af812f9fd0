import { PassThrough } from "node:stream";
import type { AppLoadContext, EntryContext, HandleErrorFunction } from "@remix-run/node";
import { createReadableStreamFromReadable } from "@remix-run/node";
import { isRouteErrorResponse, RemixServer } from "@remix-run/react";
import { renderToPipeableStream } from "react-dom/server";
import { apiAnswers, type ApiAnswers } from "#app/lib/session/api-answers.server.ts";
import type { AppContext } from "#app/lib/context.server.ts";
import { NonceProvider } from "#app/lib/nonce.tsx";
import { getServices } from "#app/lib/services.server.ts";
import type { WebhookStats } from "#app/lib/webhooks/webhooks.server.ts";
import { getOpenIdProvider, type OpenIdProvider } from "#app/lib/provider/index.server.ts";

const ABORT_DELAY = 5_000;

/**
 * Called by server/ once at start, so services that answer the cluster (link decisions)
 * exist before the first HTTP request; `api` is what server/ answers without Remix, `provider`
 * the OpenID provider server/ mounts before Remix.
 */
export function initialise(ctx: AppContext): {
  stop(): void;
  api: ApiAnswers;
  webhooks(): WebhookStats;
  provider: OpenIdProvider;
} {
  const services = getServices(ctx);
  const provider = getOpenIdProvider(ctx);
  return {
    stop: () => {
      provider.stop();
      services.stop();
    },
    api: apiAnswers(ctx),
    webhooks: () => services.webhooks.stats,
    provider,
  };
}

export const handleError: HandleErrorFunction = (error, { request, context }) => {
  if (request.signal.aborted || isRouteErrorResponse(error)) return;
  const log = (context as AppLoadContext | undefined)?.app?.log;
  const where = { method: request.method, path: new URL(request.url).pathname };
  if (log) log.error("unexpected error while handling a request", { ...where, error });
  else console.error("unexpected error while handling a request", where, error);
};

export default function handleRequest(
  request: Request,
  responseStatusCode: number,
  responseHeaders: Headers,
  remixContext: EntryContext,
  loadContext: AppLoadContext,
) {
  const nonce = loadContext.cspNonce ?? "";
  return new Promise<Response>((resolve, reject) => {
    let shellRendered = false;
    const { pipe, abort } = renderToPipeableStream(
      <NonceProvider value={nonce}>
        <RemixServer context={remixContext} url={request.url} abortDelay={ABORT_DELAY} nonce={nonce} />
      </NonceProvider>,
      {
        nonce,
        onAllReady() {
          shellRendered = true;
          const body = new PassThrough();
          responseHeaders.set("Content-Type", "text/html; charset=utf-8");
          resolve(
            new Response(createReadableStreamFromReadable(body), {
              headers: responseHeaders,
              status: responseStatusCode,
            }),
          );
          pipe(body);
        },
        onShellError(error: unknown) {
          reject(error);
        },
        onError(error: unknown) {
          responseStatusCode = 500;
          if (shellRendered) console.error(error);
        },
      },
    );
    setTimeout(abort, ABORT_DELAY);
  });
}
