/**
 * The development OpenID provider, loaded on its first request: oidc-provider and the RSA key it
 * signs with cost a start nothing, and nothing at all when nobody presses "Sign in with Dev OIDC".
 */
import type { RequestHandler } from "express";
import type { Config } from "./config";
import type { KeyRing } from "./keys";
import type { Logger } from "./log";

export function lazyDevOidc(
  config: Config,
  keys: KeyRing,
  log: Logger,
): { mountPath: string; router: RequestHandler } | undefined {
  const dev = config.oauth.dev;
  if (!dev) return undefined;
  let loading: Promise<RequestHandler | undefined> | undefined;
  const router: RequestHandler = (req, res, next) => {
    loading ??= import("./dev-oidc").then((module) => module.createDevOidc(config, keys, log)?.router);
    loading.then((loaded) => (loaded ? loaded(req, res, next) : next()), next);
  };
  return { mountPath: new URL(dev.issuer).pathname, router };
}
