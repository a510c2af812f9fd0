import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from "jose";
import { z } from "zod";
import { networkError, OAuthError } from "./oauth-errors.server";

/** A GET to a provider, bounded in time, answering parsed JSON or a typed OAuthError. */
export async function fetchJson(url: string, init: RequestInit, timeoutMs: number, what: string): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(url, { ...init, redirect: "error", signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    throw (
      networkError(error, what) ??
      new OAuthError("unreachable", `${what}: ${error instanceof Error ? error.message : "failed"}`)
    );
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new OAuthError("provider-error", `${what} answered HTTP ${response.status}`);
  }
  try {
    return await response.json();
  } catch (error) {
    throw networkError(error, what) ?? new OAuthError("malformed", `${what}: the answer is not JSON`);
  }
}

const urlString = z.string().url();

/** The parts of an OpenID Provider's discovery document we rely on. */
const discoverySchema = z.object({
  issuer: urlString,
  authorization_endpoint: urlString,
  token_endpoint: urlString,
  jwks_uri: urlString,
  userinfo_endpoint: urlString.optional(),
  token_endpoint_auth_methods_supported: z.array(z.string()).optional(),
  id_token_signing_alg_values_supported: z.array(z.string()).optional(),
});
export type Discovery = z.infer<typeof discoverySchema>;

const withoutSlash = (url: string) => url.replace(/\/+$/, "");

/** Read `<issuer>/.well-known/openid-configuration`; its `issuer` must be the one configured. */
export async function discover(issuer: string, timeoutMs: number): Promise<Discovery> {
  const url = `${withoutSlash(issuer)}/.well-known/openid-configuration`;
  const body = await fetchJson(url, { headers: { Accept: "application/json" } }, timeoutMs, "discovery");
  const parsed = discoverySchema.safeParse(body);
  if (!parsed.success) throw new OAuthError("malformed", "discovery: not an OpenID Provider configuration");
  if (withoutSlash(parsed.data.issuer) !== withoutSlash(issuer)) {
    throw new OAuthError("malformed", "discovery: the document names another issuer");
  }
  return parsed.data;
}

export type KeySet = ReturnType<typeof createRemoteJWKSet>;

export function remoteKeys(discovery: Discovery, timeoutMs: number): KeySet {
  return createRemoteJWKSet(new URL(discovery.jwks_uri), { timeoutDuration: timeoutMs, cooldownDuration: 30_000 });
}

const idClaimsSchema = z.object({
  sub: z.string().min(1).max(255),
  nonce: z.string().optional(),
  azp: z.string().optional(),
  email: z.string().optional(),
  email_verified: z.union([z.boolean(), z.enum(["true", "false"])]).optional(),
});

const userinfoSchema = z.object({
  sub: z.string().min(1).max(255),
  email: z.string().optional(),
  email_verified: z.union([z.boolean(), z.enum(["true", "false"])]).optional(),
});

export interface IdTokenCheck {
  discovery: Discovery;
  keys: KeySet;
  clientId: string;
  nonce: string;
  timeoutMs: number;
  what: string;
}

/**
 * The subject and email an ID token proves: signature by the issuer's published keys, issuer,
 * audience, expiry and our nonce all checked. Claims missing from the ID token are read from the
 * userinfo endpoint, whose `sub` must be the token's.
 */
export async function verifiedOidcClaims(
  idToken: unknown,
  accessToken: string,
  check: IdTokenCheck,
): Promise<{ subject: string; email: string | undefined; emailVerified: boolean }> {
  if (typeof idToken !== "string" || idToken.length === 0 || idToken.length > 16_384) {
    throw new OAuthError("malformed", `${check.what}: the token answer has no ID token`);
  }
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(idToken, check.keys, {
      issuer: check.discovery.issuer,
      audience: check.clientId,
      clockTolerance: 60,
      requiredClaims: ["sub", "exp", "iat"],
    }));
  } catch (error) {
    throw idTokenError(error, check.what);
  }
  const claims = idClaimsSchema.safeParse(payload);
  if (!claims.success) throw new OAuthError("id-token", `${check.what}: the ID token's claims are malformed`);
  if (claims.data.nonce !== check.nonce)
    throw new OAuthError("id-token", `${check.what}: the ID token's nonce is not this sign-in's`);
  if (Array.isArray(payload.aud) && payload.aud.length > 1 && claims.data.azp !== check.clientId) {
    throw new OAuthError("id-token", `${check.what}: the ID token was issued to another party (azp)`);
  }

  let { email, email_verified: verified } = claims.data;
  if (email === undefined && check.discovery.userinfo_endpoint) {
    const body = await fetchJson(
      check.discovery.userinfo_endpoint,
      { headers: { Authorization: `Bearer ${accessToken}`, Accept: "application/json" } },
      check.timeoutMs,
      `${check.what} userinfo`,
    );
    const info = userinfoSchema.safeParse(body);
    if (!info.success) throw new OAuthError("malformed", `${check.what} userinfo: not a userinfo answer`);
    if (info.data.sub !== claims.data.sub)
      throw new OAuthError("id-token", `${check.what} userinfo: another subject than the ID token's`);
    ({ email, email_verified: verified } = info.data);
  }
  return { subject: claims.data.sub, email, emailVerified: verified === true || verified === "true" };
}

function idTokenError(error: unknown, what: string): OAuthError {
  const network = networkError(error, `${what} keys`);
  if (network) return network;
  if (
    error instanceof joseErrors.JWKSInvalid ||
    (error instanceof joseErrors.JOSEError && /JSON Web Key Set/.test(error.message))
  ) {
    return new OAuthError("malformed", `${what} keys: ${error.message.slice(0, 80)}`);
  }
  const code = error instanceof joseErrors.JOSEError ? error.code : error instanceof Error ? error.name : "unknown";
  return new OAuthError("id-token", `${what}: the ID token is not valid (${code})`);
}
