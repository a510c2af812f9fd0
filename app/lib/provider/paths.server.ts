/** Where the OpenID provider answers: its routes (beside the app's own) and which of them are back-channel. */

/** oidc-provider's endpoints: under /oidc, the device page at /device (the issuer is APP_URL itself). */
export const ROUTES = {
  authorization: "/oidc/auth",
  token: "/oidc/token",
  userinfo: "/oidc/me",
  jwks: "/oidc/jwks",
  revocation: "/oidc/token/revocation",
  introspection: "/oidc/token/introspection",
  end_session: "/oidc/session/end",
  device_authorization: "/oidc/device/auth",
  code_verification: "/device",
} as const;

/** the back-channel endpoints: called by apps' servers (or a CLI), never by a person's browser */
export const BACK_CHANNEL: ReadonlySet<string> = new Set([
  ROUTES.token,
  ROUTES.revocation,
  ROUTES.introspection,
  ROUTES.device_authorization,
  ROUTES.userinfo,
]);

export const INTERACTION_PREFIX = "/oidc/interaction/";

export function isProviderPath(path: string): boolean {
  return (
    path === "/.well-known/openid-configuration" ||
    path === "/.well-known/oauth-authorization-server" ||
    path.startsWith("/oidc/") ||
    path === ROUTES.code_verification ||
    path.startsWith(`${ROUTES.code_verification}/`)
  );
}
