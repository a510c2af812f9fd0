/**
 * The development OpenID provider, loaded on its first request or by `warm()` once the server is
 * listening: oidc-provider and the RSA key it signs with are not on the start's path to /healthz.
 */
import type { RequestHandler } from "express";
import type { Config } from "./config";
import type { KeyRing } from "./keys";
import type { Logger } from "./log";

export function lazyDevOidc(
  config: Config,
  keys: KeyRing,
  log: Logger,
): { mountPath: string; router: RequestHandler; warm(): void } | undefined {
  const dev = config.oauth.dev;
  if (!dev) return undefined;
  let loading: Promise<RequestHandler | undefined> | undefined;
  const load = () =>
    (loading ??= import("./dev-oidc").then(async (module) => (await module.createDevOidc(config, keys, log))?.router));
  const router: RequestHandler = (req, res, next) => {
    load().then((loaded) => (loaded ? loaded(req, res, next) : next()), next);
  };
  return {
    mountPath: new URL(dev.issuer).pathname,
    router,
    // loaded ahead of the first sign-in, whose discovery request must answer within OAUTH_TIMEOUT_MS
    warm: () => void load().catch((error: unknown) => log.error("the Dev OIDC provider failed to load", { error })),
  };
}
