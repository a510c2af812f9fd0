/**
 * The oidc-provider instance: its configuration (routes under /oidc, the device page at /device,
 * scopes, lifetimes, keys), its adapter over the replicated tables, and the hooks that make
 * PwdlessGs's own sign-in its login. Loaded on first use (oidc-provider is large), never at start.
 */
import Provider, { errors, interactionPolicy, type Configuration, type KoaContextWithOIDC } from "oidc-provider";
import type { ProviderSettings } from "#app/lib/context.server.ts";
import { adapterFor } from "./adapter.server";
import type { ProviderDeps } from "./deps.server";
import { deriveCookieKeys, deriveProviderKeys } from "./keys.server";
import { ourSession, grantFor } from "./grants.server";
import { interactionRoutes, requestSafety } from "./interactions.server";
import * as pages from "./pages.server";
import { ROUTES } from "./paths.server";

const DAY_SECONDS = 24 * 60 * 60;

/** Refusals a person can be told more precisely than "this sign-in cannot go on". */
const REFUSALS: Partial<Record<string, pages.Problem>> = {
  invalid_client: "unknown-app",
  invalid_redirect_uri: "unregistered-redirect",
};

function ttl(settings: ProviderSettings, sessionTtlDays: number): Configuration["ttl"] {
  return {
    AccessToken: settings.accessTokenTtlSeconds,
    IdToken: settings.accessTokenTtlSeconds,
    AuthorizationCode: settings.codeTtlSeconds,
    DeviceCode: 10 * 60,
    Interaction: 60 * 60,
    Session: sessionTtlDays * DAY_SECONDS,
    Grant: settings.refreshTokenMaxDays * DAY_SECONDS,
    // renewed by every rotation, never past the family's absolute life (from its first token)
    RefreshToken: (_ctx, token) => {
      const left = settings.refreshTokenMaxDays * DAY_SECONDS - token.totalLifetime();
      return Math.max(1, Math.min(settings.refreshTokenTtlDays * DAY_SECONDS, left));
    },
  };
}

function html(ctx: KoaContextWithOIDC, body: string, status?: number): void {
  ctx.type = "html";
  if (status) ctx.status = status;
  ctx.body = body;
}

export async function buildProvider(deps: ProviderDeps): Promise<Provider> {
  const { config, keys, settings, services, log } = deps;
  const clientNames = new Map(settings.clients.map((c) => [c.client_id, c.client_name ?? c.client_id]));
  const jwks = await deriveProviderKeys(
    keys.current.provider,
    keys.previous.map((k) => k.provider),
  );

  const policy = interactionPolicy.base();
  policy.get("login")!.checks.add(
    new interactionPolicy.Check(
      "pwdless_session",
      "the PwdlessGs session has ended or belongs to someone else",
      async (ctx) => {
        const accountId = ctx.oidc.session?.accountId;
        if (!accountId) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
        const ours = await ourSession(services, ctx.req);
        return ours?.user.id === accountId
          ? interactionPolicy.Check.NO_NEED_TO_PROMPT
          : interactionPolicy.Check.REQUEST_PROMPT;
      },
    ),
  );

  const configuration: Configuration = {
    clients: settings.clients.map((client) => ({
      ...client,
      response_types: client.response_types.filter((type) => type === "code"),
    })),
    adapter: adapterFor(deps),
    jwks: { keys: jwks as never },
    cookies: {
      keys: deriveCookieKeys(
        keys.current.provider,
        keys.previous.map((k) => k.provider),
      ),
      names: { session: "pwdless_oidc", interaction: "pwdless_oidc_interaction", resume: "pwdless_oidc_resume" },
      long: { httpOnly: true, sameSite: "lax" },
      short: { httpOnly: true, sameSite: "lax" },
    },
    scopes: ["openid", "offline_access", "email", "profile"],
    claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["preferred_username"] },
    // the ID token carries the address (the issue's promise), not only userinfo
    conformIdTokenClaims: false,
    responseTypes: ["code"],
    clientAuthMethods: ["client_secret_basic", "client_secret_post", "none"],
    enabledJWA: { idTokenSigningAlgValues: ["RS256", "EdDSA"] },
    pkce: { required: (_ctx, client) => client.clientAuthMethod === "none" },
    routes: ROUTES,
    ttl: ttl(settings, config.sessionTtlDays),
    rotateRefreshToken: true,
    issueRefreshToken: async (_ctx, client, code) =>
      client.grantTypeAllowed("refresh_token") && code.scopes.has("offline_access"),
    extraClientMetadata: {
      properties: ["first_party"],
      validator(_ctx, key, value) {
        if (key === "first_party" && value !== undefined && typeof value !== "boolean") {
          throw new errors.InvalidClientMetadata("first_party must be true or false");
        }
      },
    },
    clientBasedCORS: (_ctx, origin, client) =>
      origin !== "null" && (client.redirectUris ?? []).some((uri) => URL.parse(uri)?.origin === origin),
    features: {
      devInteractions: { enabled: false },
      pushedAuthorizationRequests: { enabled: false },
      resourceIndicators: { enabled: false },
      userinfo: { enabled: true },
      revocation: {
        enabled: true,
        allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId,
      },
      // confidential clients (APIs holding a secret) may introspect; public ones hold none to prove it
      introspection: {
        enabled: true,
        allowedPolicy: async (_ctx, client) => client.clientAuthMethod !== "none",
      },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx) =>
          html(
            ctx,
            pages.logoutPage(pages.pageContext(ctx.req, config), {
              action: ctx.oidc.urlFor("end_session_confirm"),
              xsrf: String(ctx.oidc.session!.state!.secret),
              client: ctx.oidc.client ? clientNames.get(ctx.oidc.client.clientId) : undefined,
            }),
          ),
        // after signing out with no app to return to: our own "You are signed out" page
        postLogoutSuccessSource: async (ctx) => ctx.redirect("/login?signedOut=1"),
      },
      backchannelLogout: { enabled: true },
      deviceFlow: {
        enabled: true,
        charset: "base-20",
        mask: "****-****",
        deviceInfo: () => ({}),
        userCodeInputSource: async (ctx, _form, _out, error) =>
          html(
            ctx,
            pages.deviceCodePage(pages.pageContext(ctx.req, config), {
              action: ctx.oidc.urlFor("code_verification"),
              xsrf: String(ctx.oidc.session!.state!.secret),
              problem: error ? String((error as { name?: string }).name) : undefined,
              userCode: (error as { userCode?: string } | undefined)?.userCode,
            }),
          ),
        userCodeConfirmSource: async (ctx, _form, client, _info, userCode) =>
          html(
            ctx,
            pages.deviceConfirmPage(pages.pageContext(ctx.req, config), {
              action: ctx.oidc.urlFor("code_verification"),
              xsrf: String(ctx.oidc.session!.state!.secret),
              client: clientNames.get(client.clientId) ?? client.clientId,
              userCode,
            }),
          ),
        successSource: async (ctx) =>
          html(
            ctx,
            pages.deviceDonePage(
              pages.pageContext(ctx.req, config),
              clientNames.get(ctx.oidc.client!.clientId) ?? ctx.oidc.client!.clientId,
            ),
          ),
      },
    },
    interactions: { url: (_ctx, interaction) => `/oidc/interaction/${interaction.uid}`, policy },
    async findAccount(_ctx, sub) {
      const user = services.users.getUser(sub);
      if (!user) return undefined;
      // every address PwdlessGs holds was proved by its owner (link, code, passkey's account, a provider's verified address)
      return {
        accountId: sub,
        claims: async () => ({ sub, email: user.email, email_verified: true, preferred_username: user.email }),
      };
    },
    loadExistingGrant: (ctx) => grantFor(deps, ctx),
    async renderError(ctx, out) {
      const error = String(out.error ?? "server_error");
      const description = out.error_description ? String(out.error_description) : undefined;
      const expired = error === "invalid_request" && /expired|not found|session/i.test(String(description));
      const problem = expired ? "expired" : (REFUSALS[error] ?? "refused");
      log.info("the OpenID provider refused a request with a page", { path: ctx.path, error, description });
      const page = pages.pageContext(ctx.req, config);
      // the error code, for the app's developer; oidc-provider's description is English only, so
      // it is shown on English pages and is in the log line above for every page
      const detail = description && page.locale === "en" ? `${error}: ${description}` : error;
      html(ctx, pages.problemPage(page, problem, detail));
    },
    // backchannel logout goes to URIs from the operator's own clients file, which may be on a private network
    fetch: (url, options) => fetch(url, { ...options, dispatcher: undefined } as RequestInit),
  };

  const provider = new Provider(config.appUrl.origin, configuration);
  provider.proxy = true;
  provider.on("server_error", (_ctx, error) => log.error("the OpenID provider failed a request", { error }));
  provider.use(requestSafety(deps, provider));
  provider.use(interactionRoutes(deps, provider, clientNames));
  // the file was checked at start; oidc-provider checks each client once more, and says so if it disagrees
  for (const client of settings.clients) {
    await provider.Client.find(client.client_id).catch((error: unknown) =>
      log.error(`OIDC_PROVIDER_CLIENTS_FILE: client "${client.client_id}" was refused by oidc-provider`, {
        reason:
          error instanceof Error
            ? `${error.message} ${(error as { error_description?: string }).error_description ?? ""}`
            : String(error),
      }),
    );
  }
  log.info("OpenID provider loaded", {
    issuer: config.appUrl.origin,
    clients: settings.clients.length,
    keys: jwks.map((k) => `${k.alg}:${k.kid.slice(0, 8)}`),
  });
  return provider;
}
