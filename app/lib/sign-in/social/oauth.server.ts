import { randomBytes } from "node:crypto";
import type { SessionStorage } from "@remix-run/node";
import type { AuthenticateOptions } from "remix-auth";
import { OAuth2Strategy, type OAuth2Profile, type OAuth2StrategyVerifyParams } from "remix-auth-oauth2";
import { z } from "zod";
import type { Logger } from "#app/lib/context.server.ts";
import { githubUserSchema, primaryVerifiedEmail } from "./github-email.server";
import { OAuthError, toOAuthError } from "./oauth-errors.server";
import { discover, fetchJson, remoteKeys, verifiedOidcClaims, type Discovery, type KeySet } from "./oidc.server";
import {
  callbackUrl,
  type GitHubProvider,
  type OidcProvider,
  type Provider,
  type ProviderId,
} from "./providers.server";
import { normaliseEmail } from "#app/lib/validation.server.ts";

export const OAUTH_COOKIE = "pwdless_oauth";
/** how long a started provider sign-in may take before its state cookie is refused */
export const OAUTH_COOKIE_TTL_SECONDS = 10 * 60;

/** What a provider proved: who the person is there, and an address it has verified. */
export interface ProviderIdentity {
  provider: ProviderId;
  subject: string;
  email: string;
}

/** Ours, kept beside the library's state and PKCE verifier in the sealed state cookie. */
const pendingSchema = z.object({
  provider: z.string(),
  nonce: z.string().min(16),
  redirectTo: z.string().max(2048),
});

type IdTokenExtra = { id_token?: string };

/** Per-request values the strategy's hooks need; keyed by the Request we hand the strategy. */
const nonces = new WeakMap<Request, string>();

/**
 * remix-auth-oauth2's strategy (state, PKCE S256, code exchange) plus what it leaves to us:
 * the OIDC nonce in the authorization request, and provider-specific extra parameters.
 */
class ProviderStrategy extends OAuth2Strategy<ProviderIdentity, OAuth2Profile, IdTokenExtra> {
  constructor(
    private readonly provider: Provider,
    endpoints: {
      authorizationEndpoint: string;
      tokenEndpoint: string;
      authenticateWith: "request_body" | "http_basic_auth";
    },
    redirectURI: string,
    verify: (params: OAuth2StrategyVerifyParams<OAuth2Profile, IdTokenExtra>) => Promise<ProviderIdentity>,
  ) {
    super(
      {
        clientId: provider.clientId,
        clientSecret: provider.clientSecret,
        authorizationEndpoint: endpoints.authorizationEndpoint,
        tokenEndpoint: endpoints.tokenEndpoint,
        redirectURI,
        scopes: provider.scopes,
        codeChallengeMethod: "S256",
        authenticateWith: endpoints.authenticateWith,
      },
      verify,
    );
    this.name = provider.id;
  }

  protected override authorizationParams(params: URLSearchParams, request: Request): URLSearchParams {
    const extended = new URLSearchParams(params);
    for (const [key, value] of Object.entries(this.provider.extraParams)) extended.set(key, value);
    const nonce = nonces.get(request);
    if (nonce && this.provider.kind === "oidc") extended.set("nonce", nonce);
    return extended;
  }
}

interface Ready {
  strategy: ProviderStrategy;
  /** the issuer's discovery document, for OIDC providers */
  discovery?: Discovery;
}

export interface SocialLoginOptions {
  appUrl: URL;
  providers: Provider[];
  /** the sealed state cookie (state, PKCE verifier, nonce, redirectTo) */
  storage: SessionStorage;
  timeoutMs: number;
  log: Logger;
}

/**
 * Sign-in through GitHub, Google, an OpenID Connect issuer or the development provider:
 * `start` sends the browser to the provider, `finish` checks its answer and returns the
 * verified identity. Failures are OAuthErrors, for the route to explain.
 */
export class SocialLogin {
  private readonly ready = new Map<ProviderId, Promise<Ready>>();

  constructor(private readonly options: SocialLoginOptions) {}

  get providers(): Provider[] {
    return this.options.providers;
  }

  find(id: string): Provider | undefined {
    return this.options.providers.find((p) => p.id === id);
  }

  /** The redirect to the provider, setting the state cookie. */
  async start(provider: Provider, redirectTo: string): Promise<Response> {
    const { strategy } = await this.prepare(provider);
    const nonce = randomBytes(24).toString("base64url");
    // a clean request: the strategy reads ?state and ?error from the URL, and only the URL
    const request = new Request(new URL(`/auth/${provider.id}`, this.options.appUrl), { method: "GET" });
    nonces.set(request, nonce);
    const storage = this.freshState({ provider: provider.id, nonce, redirectTo });
    try {
      await strategy.authenticate(request, storage, authenticateOptions(provider.id));
    } catch (thrown) {
      if (thrown instanceof Response) return thrown;
      throw toOAuthError(thrown, provider.id);
    }
    throw new Error(`the ${provider.id} strategy did not redirect to the provider`);
  }

  /** Where the sign-in in this browser's state cookie should land; "/account" when there is none. */
  async pendingRedirectTo(request: Request): Promise<string> {
    const session = await this.options.storage.getSession(request.headers.get("Cookie"));
    const redirectTo = session.get("redirectTo");
    return typeof redirectTo === "string" ? redirectTo : "/account";
  }

  /** Check the provider's answer (state, PKCE, code, ID token and nonce, verified email). */
  async finish(provider: Provider, request: Request): Promise<{ identity: ProviderIdentity }> {
    const url = new URL(request.url);
    const session = await this.options.storage.getSession(request.headers.get("Cookie"));
    const pending = pendingSchema.safeParse({
      provider: session.get("provider"),
      nonce: session.get("nonce"),
      redirectTo: session.get("redirectTo"),
    });
    if (!url.searchParams.has("error")) {
      if (!pending.success) throw new OAuthError("state", "no sign-in was started in this browser, or it expired");
      if (pending.data.provider !== provider.id)
        throw new OAuthError("state", `the sign-in was started with ${pending.data.provider}`);
    }
    const ready = await this.prepare(provider);
    const iss = url.searchParams.get("iss");
    if (iss !== null && ready.discovery && iss !== ready.discovery.issuer) {
      // RFC 9207: the answer comes from another issuer than the one this sign-in went to
      throw new OAuthError("state", "the answer names another issuer");
    }
    // the provider's answers, each bounded: the token exchange by this signal, the rest by fetchJson
    const bounded = new Request(request.url, {
      headers: request.headers,
      signal: AbortSignal.any([request.signal, AbortSignal.timeout(this.options.timeoutMs)]),
    });
    if (pending.success) nonces.set(bounded, pending.data.nonce);
    try {
      const identity = await ready.strategy.authenticate(
        bounded,
        this.options.storage,
        authenticateOptions(provider.id),
      );
      return { identity };
    } catch (thrown) {
      if (thrown instanceof Response) throw thrown;
      throw toOAuthError(thrown, provider.id);
    }
  }

  /** The Set-Cookie that ends a provider sign-in, whatever its outcome. */
  async clearState(): Promise<string> {
    const { storage } = this.options;
    return storage.destroySession(await storage.getSession(null));
  }

  /** Discovery (for OIDC) once per process; a failure is not kept, so the next attempt retries. */
  private prepare(provider: Provider): Promise<Ready> {
    let ready = this.ready.get(provider.id);
    if (!ready) {
      ready = provider.kind === "github" ? Promise.resolve(this.githubStrategy(provider)) : this.oidcStrategy(provider);
      this.ready.set(provider.id, ready);
      ready.catch(() => this.ready.delete(provider.id));
    }
    return ready;
  }

  private githubStrategy(provider: GitHubProvider): Ready {
    const { timeoutMs } = this.options;
    const strategy = new ProviderStrategy(
      provider,
      {
        authorizationEndpoint: provider.authorizationEndpoint,
        tokenEndpoint: provider.tokenEndpoint,
        authenticateWith: "request_body",
      },
      callbackUrl(this.options.appUrl, provider.id),
      async ({ tokens }) => {
        const headers = {
          Authorization: `Bearer ${tokens.access_token}`,
          Accept: "application/vnd.github+json",
          "X-GitHub-Api-Version": "2022-11-28",
          "User-Agent": "pwdless-gs",
        };
        const user = githubUserSchema.safeParse(
          await fetchJson(`${provider.apiUrl}/user`, { headers }, timeoutMs, "github /user"),
        );
        if (!user.success) throw new OAuthError("malformed", "github /user: not a GitHub user");
        const choice = primaryVerifiedEmail(
          await fetchJson(`${provider.apiUrl}/user/emails`, { headers }, timeoutMs, "github /user/emails"),
        );
        if (!choice.ok) throw new OAuthError(choice.problem, `github /user/emails: ${choice.problem}`);
        return { provider: provider.id, subject: String(user.data.id), email: choice.email };
      },
    );
    return { strategy };
  }

  private async oidcStrategy(provider: OidcProvider): Promise<Ready> {
    const { timeoutMs } = this.options;
    const discovery = await discover(provider.issuer, timeoutMs);
    const keys: KeySet = remoteKeys(discovery, timeoutMs);
    // the spec's default is client_secret_basic; use the body only where the issuer says it takes it
    const authenticateWith = discovery.token_endpoint_auth_methods_supported?.includes("client_secret_post")
      ? "request_body"
      : "http_basic_auth";
    const strategy = new ProviderStrategy(
      provider,
      {
        authorizationEndpoint: discovery.authorization_endpoint,
        tokenEndpoint: discovery.token_endpoint,
        authenticateWith,
      },
      callbackUrl(this.options.appUrl, provider.id),
      async ({ tokens, request }) => {
        const nonce = nonces.get(request);
        if (!nonce) throw new OAuthError("state", "no nonce for this sign-in");
        const claims = await verifiedOidcClaims(tokens.id_token, tokens.access_token, {
          discovery,
          keys,
          clientId: provider.clientId,
          nonce,
          timeoutMs,
          what: provider.id,
        });
        if (!claims.email) throw new OAuthError("no-email", `${provider.id}: no email claim`);
        if (!claims.emailVerified)
          throw new OAuthError("unverified-email", `${provider.id}: email_verified is not true`);
        const email = normaliseEmail(claims.email);
        if (!email.ok) throw new OAuthError("malformed", `${provider.id}: the email claim is not an address`);
        return { provider: provider.id, subject: claims.subject, email: email.email };
      },
    );
    this.options.log.info("provider ready", { provider: provider.id, issuer: discovery.issuer });
    return { strategy, discovery };
  }

  /** A state cookie for a new sign-in: the old one, if any, is replaced, not merged. */
  private freshState(pending: z.infer<typeof pendingSchema>): SessionStorage {
    const storage = this.options.storage;
    return {
      ...storage,
      async getSession() {
        const session = await storage.getSession(null);
        for (const [key, value] of Object.entries(pending)) session.set(key, value);
        return session;
      },
    };
  }
}

function authenticateOptions(name: string): AuthenticateOptions {
  return {
    name,
    sessionKey: "user",
    sessionErrorKey: "auth:error",
    sessionStrategyKey: "strategy",
    throwOnError: true,
  };
}
