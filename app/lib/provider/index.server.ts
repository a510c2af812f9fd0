/**
 * "Sign in with PwdlessGs": the OpenID provider for other apps, its one public module. server/
 * mounts `handle` before Remix; /account lists and revokes apps through it; /login names the app
 * an interaction is for. Its tables, single-use decisions and sign-out hooks start with the node;
 * oidc-provider itself (a large module, and the RSA key it derives) loads on first use or `warm()`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type Provider from "oidc-provider";
import type { User } from "#app/lib/accounts/users.server.ts";
import type { AppContext } from "#app/lib/context.server.ts";
import { getServices } from "#app/lib/services.server.ts";
import { Consents } from "./consents.server";
import type { ProviderDeps } from "./deps.server";
import { BACK_CHANNEL, isProviderPath } from "./paths.server";
import { ProviderRows } from "./rows.server";
import { AppSignOut } from "./sign-out.server";
import { SingleUse } from "./single-use.server";

export interface AppAccess {
  clientId: string;
  name: string;
  scopes: string[];
  firstParty: boolean;
  since: number;
}

export interface OpenIdProvider {
  /** false when OIDC_PROVIDER_CLIENTS_FILE is unset: every provider path is left to the app (404) */
  readonly enabled: boolean;
  /** Node handler for the provider's paths (discovery, /oidc/…, /device); anything else goes to `next` */
  handle(req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void): void;
  /** POSTs apps' servers and CLIs make (token, revocation, …): no browser, so no cross-site check applies */
  isBackChannel(method: string, path: string): boolean;
  /** load oidc-provider and derive its keys now, ahead of the first request */
  warm(): void;
  appsWithAccess(user: User): AppAccess[];
  /** take an app's access back: its consent, and every token family it holds for the person */
  revokeApp(user: User, clientId: string, ip: string): boolean;
  /** the app a /login?redirectTo=/oidc/interaction/… is signing in for, to name it on the page */
  appForRedirect(redirectTo: string): string | null;
  stop(): void;
}

const PRUNE_EVERY_MS = 5 * 60 * 1000;
const DAY = 24 * 60 * 60 * 1000;

const built = new WeakMap<AppContext, OpenIdProvider>();

export function getOpenIdProvider(ctx: AppContext): OpenIdProvider {
  let provider = built.get(ctx);
  if (!provider) {
    provider = ctx.config.provider ? createProvider(ctx) : disabled;
    built.set(ctx, provider);
  }
  return provider;
}

const disabled: OpenIdProvider = {
  enabled: false,
  handle: (_req, _res, next) => next(),
  isBackChannel: () => false,
  warm: () => undefined,
  appsWithAccess: () => [],
  revokeApp: () => false,
  appForRedirect: () => null,
  stop: () => undefined,
};

function createProvider(ctx: AppContext): OpenIdProvider {
  const { config, keys, cluster, log } = ctx;
  const settings = config.provider!;
  const services = getServices(ctx);
  const now = () => Date.now();
  const rows = new ProviderRows(cluster, { now, familyLifeMs: settings.refreshTokenMaxDays * DAY + DAY });
  const deps: ProviderDeps = {
    config,
    keys,
    settings,
    cluster,
    log,
    audit: services.audit,
    services: { users: services.users, sessions: services.sessions, auth: services.auth },
    rows,
    singleUse: new SingleUse(cluster, rows, log, now),
    consents: new Consents(cluster, now),
  };
  const names = new Map(settings.clients.map((c) => [c.client_id, c.client_name ?? c.client_id]));

  let loading: Promise<{ provider: Provider; callback: ReturnType<Provider["callback"]> }> | undefined;
  const load = () =>
    (loading ??= import("./configuration.server")
      .then((module) => module.buildProvider(deps))
      .then((provider) => ({ provider, callback: provider.callback() })));
  const signOut = new AppSignOut(deps, async () => (await load()).provider);

  // erasure (README, Erasure) reaches the provider's rows; "download my data" lists the apps
  services.lifecycle.addEraser("openid-provider", (_user, ids) => {
    deps.consents.forgetAll(ids);
    rows.eraseAccount(ids);
  });
  services.lifecycle.addExporter("openid-provider", (_user, ids) => ({
    appsWithAccess: deps.consents.list(ids).map((c) => ({ app: c.clientId, scopes: c.scopes, since: c.at })),
    grants: rows.grantsFor(ids),
  }));

  const pruneTimer = setInterval(
    () => rows.prune((sid) => services.sessions.findActive(sid) !== undefined),
    PRUNE_EVERY_MS,
  );
  pruneTimer.unref();

  return {
    enabled: true,
    handle(req, res, next) {
      const path = (req.url ?? "/").split("?")[0]!;
      if (!isProviderPath(path)) return next();
      load().then(({ callback }) => callback(req, res), next);
    },
    isBackChannel: (method, path) => method === "POST" && BACK_CHANNEL.has(path),
    warm: () => void load().catch((error: unknown) => log.error("the OpenID provider failed to load", { error })),
    appsWithAccess(user) {
      return deps.consents.list(services.users.idsOf(user)).map((consent) => ({
        clientId: consent.clientId,
        name: names.get(consent.clientId) ?? consent.clientId,
        scopes: consent.scopes,
        firstParty: consent.firstParty,
        since: consent.at,
      }));
    },
    revokeApp(user, clientId, ip) {
      const ids = services.users.idsOf(user);
      const hadConsent = deps.consents.forget(ids, clientId);
      const grants = rows.grantsOf(ids, clientId);
      for (const grantId of grants) rows.revokeFamily(grantId, "app-revoked");
      if (!hadConsent && grants.length === 0) return false;
      services.audit.record("app-access-revoked", { uid: user.id, ip, client: clientId, families: grants.length });
      return true;
    },
    appForRedirect(redirectTo) {
      const uid = /^\/oidc\/interaction\/([A-Za-z0-9_-]{1,64})$/.exec(redirectTo)?.[1];
      const params = uid ? rows.table("Interaction").get(uid)?.p.params : undefined;
      const clientId = (params as { client_id?: unknown } | undefined)?.client_id;
      return typeof clientId === "string" ? (names.get(clientId) ?? null) : null;
    },
    stop() {
      clearInterval(pruneTimer);
      signOut.stop();
    },
  };
}
