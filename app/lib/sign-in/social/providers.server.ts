import type { AppConfig, KeyRing } from "#app/lib/context.server.ts";

export const PROVIDER_IDS = ["github", "google", "oidc", "dev"] as const;
export type ProviderId = (typeof PROVIDER_IDS)[number];

interface ProviderBase {
  id: ProviderId;
  /** the button's words: "Sign in with …" */
  label: string;
  clientId: string;
  clientSecret: string;
  scopes: string[];
  /** extra authorization parameters this provider wants */
  extraParams: Record<string, string>;
}

/** GitHub is OAuth 2 only: the email comes from its API, not from an ID token. */
export interface GitHubProvider extends ProviderBase {
  kind: "github";
  authorizationEndpoint: string;
  tokenEndpoint: string;
  apiUrl: string;
}

/** Any OpenID Connect issuer: endpoints and keys come from its discovery document. */
export interface OidcProvider extends ProviderBase {
  kind: "oidc";
  issuer: string;
}

export type Provider = GitHubProvider | OidcProvider;

const GOOGLE_ISSUER = "https://accounts.google.com";

/** The providers this process offers, from its settings, in the order of the buttons. */
export function configuredProviders(config: AppConfig, keys: KeyRing): Provider[] {
  const { github, google, oidc, dev } = config.oauth;
  const providers: Provider[] = [];
  if (github) {
    providers.push({
      id: "github",
      kind: "github",
      label: "GitHub",
      ...github,
      scopes: ["read:user", "user:email"],
      extraParams: {},
      authorizationEndpoint: "https://github.com/login/oauth/authorize",
      tokenEndpoint: "https://github.com/login/oauth/access_token",
      apiUrl: "https://api.github.com",
    });
  }
  if (google) {
    providers.push({
      id: "google",
      kind: "oidc",
      label: "Google",
      ...google,
      issuer: GOOGLE_ISSUER,
      scopes: ["openid", "email"],
      extraParams: {},
    });
  }
  if (oidc) {
    providers.push({
      id: "oidc",
      kind: "oidc",
      label: oidc.name,
      clientId: oidc.clientId,
      clientSecret: oidc.clientSecret,
      issuer: oidc.issuer,
      scopes: ["openid", "email"],
      extraParams: {},
    });
  }
  if (dev) {
    providers.push({
      id: "dev",
      kind: "oidc",
      label: "Dev OIDC",
      clientId: dev.clientId,
      clientSecret: keys.current.devOidcClient,
      issuer: dev.issuer,
      scopes: ["openid", "email"],
      // ask for an address every time, so a developer can switch people
      extraParams: { prompt: "login" },
    });
  }
  return providers;
}

/** Where a provider sends people back: register exactly this URL with the provider. */
export function callbackUrl(appUrl: URL, id: ProviderId): string {
  return new URL(`/auth/${id}/callback`, appUrl).href;
}
