/**
 * The oidc-provider instance: its configuration (routes under /oidc, the device page at /device,
 * scopes, lifetimes, keys), its adapter over the replicated tables, and the hooks that make
 * PwdlessGs's own sign-in its login. Loaded on first use (oidc-provider is large), never at start.
 */
import Provider, {
  errors,
  interactionPolicy,
  type Adapter,
  type AdapterPayload,
  type Configuration,
  type KoaContextWithOIDC,
} from "oidc-provider";
import type { ProviderSettings } from "#app/lib/context.server.ts";
import type { ProviderDeps } from "./deps.server";
import { deriveCookieKeys, deriveProviderKeys } from "./keys.server";
import { ourSession, grantFor } from "./grants.server";
import { interactionRoutes, requestSafety } from "./interactions.server";
import * as pages from "./pages.server";
import { ROUTES } from "./paths.server";
import { GRANTABLE, MODELS, type Model, type Payload } from "./rows.server";

const DAY_SECONDS = 24 * 60 * 60;

/** An OAuth error with a status: what the adapter throws when nobody can decide a single use. */
function unavailable(): Error {
  const error = new errors.CustomOIDCProviderError(
    "temporarily_unavailable",
    "the node that must decide this single use cannot be reached; try again in a moment",
  );
  Object.assign(error, { status: 503, statusCode: 503, expose: true });
  return error;
}

const LABELS: Partial<Record<Model, string>> = {
  AuthorizationCode: "authorization code",
  RefreshToken: "refresh token",
  DeviceCode: "device code",
};

/** oidc-provider's adapter, one instance per model, over ProviderRows and SingleUse. */
export function adapterFor(deps: ProviderDeps) {
  const { rows, singleUse, services, audit } = deps;

  async function lookup(model: Model, id: string): Promise<Payload | undefined> {
    const row = await rows.get(model, id);
    if (!row) return undefined;
    // a grant, and every token under it, is refused once its family is revoked or the PwdlessGs
    // session it was given in has ended; an Interaction only names a grant, and outlives it
    if (model === "Grant" || GRANTABLE.includes(model)) {
      const grantId = model === "Grant" ? id : row.g;
      if (rows.isRevoked(grantId)) return undefined;
      const sid = model === "Grant" ? row.s : grantId ? rows.table("Grant").get(grantId)?.s : undefined;
      if (sid && !services.sessions.findActive(sid)) return undefined;
    }
    const payload = structuredClone(row.p);
    const usedAt = rows.usedAt(model, id);
    if (usedAt !== undefined) {
      payload.consumed = Math.floor(usedAt / 1000);
      if (model === "RefreshToken" || model === "AuthorizationCode") {
        // oidc-provider revokes the family on seeing it: say who and what, once per replay
        audit.record("refresh-reuse", {
          uid: String(payload.accountId ?? ""),
          reason: `${LABELS[model]} used twice`,
          client: payload.clientId,
          via: "openid-provider",
        });
      }
    }
    return payload;
  }

  return class ClusterAdapter implements Adapter {
    private readonly model: Model | undefined;

    constructor(private readonly name: string) {
      this.model = (MODELS as readonly string[]).includes(name) ? (name as Model) : undefined;
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
      if (!this.model) throw new Error(`the OpenID provider keeps no ${this.name} rows`);
      rows.put(this.model, id, payload as Payload, expiresIn);
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      return this.model ? ((await lookup(this.model, id)) as AdapterPayload | undefined) : undefined;
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      const hit = await rows.findBySecond("Session", uid);
      return hit ? ((await lookup("Session", hit[0])) as AdapterPayload | undefined) : undefined;
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      const hit = await rows.findBySecond("DeviceCode", userCode);
      return hit ? ((await lookup("DeviceCode", hit[0])) as AdapterPayload | undefined) : undefined;
    }

    /** The one use, decided cluster-wide; the loser's family is revoked, as for a replay (RFC 6749 §4.1.2). */
    async consume(id: string): Promise<void> {
      if (!this.model) return;
      const outcome = await singleUse.consume(this.model, id);
      if (outcome === "ok") return;
      if (outcome === "unavailable") throw unavailable();
      const label = LABELS[this.model] ?? this.model;
      if (outcome === "used") {
        const grantId = rows.table(this.model).get(id)?.g;
        if (grantId && rows.revokeFamily(grantId, "replayed")) {
          audit.record("refresh-reuse", { reason: `${label} used twice at once`, via: "openid-provider" });
        }
        throw new errors.InvalidGrant(`${label} already used`);
      }
      throw new errors.InvalidGrant(`${label} not found`);
    }

    async destroy(id: string): Promise<void> {
      if (this.model) rows.delete(this.model, id);
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      rows.revokeFamily(grantId, "revoked");
    }
  };
}

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
      const expired = error === "invalid_request" && /expired|not found|session/i.test(String(out.error_description));
      const detail = `${error}${out.error_description ? `: ${String(out.error_description)}` : ""}`;
      html(ctx, pages.problemPage(pages.pageContext(ctx.req, config), expired ? "expired" : "refused", detail));
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
