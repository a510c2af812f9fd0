/**
 * The OpenID provider's settings: OIDC_PROVIDER_CLIENTS_FILE (a JSON array of client metadata, read
 * and checked once at start, one line per problem) and the token lifetimes. No file: the provider is off.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import type { ProviderClient, ProviderSettings } from "#app/lib/context.server.ts";
import { isLoopbackHost } from "./loopback";

type Env = Record<string, string | undefined>;

const DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";
const SCOPES = ["openid", "email", "profile", "offline_access"] as const;
const FIELDS = [
  "client_id",
  "client_name",
  "client_secret",
  "token_endpoint_auth_method",
  "redirect_uris",
  "post_logout_redirect_uris",
  "grant_types",
  "application_type",
  "first_party",
  "backchannel_logout_uri",
  "backchannel_logout_session_required",
  "id_token_signed_response_alg",
  "scope",
] as const;

const clientSchema = z.object({
  client_id: z
    .string()
    .min(1)
    .max(128)
    .regex(/^[A-Za-z0-9._~-]+$/, "may hold letters, digits and . _ ~ - only"),
  client_name: z.string().trim().min(1).max(80).optional(),
  client_secret: z.string().optional(),
  token_endpoint_auth_method: z.enum(["client_secret_basic", "client_secret_post", "none"]).optional(),
  redirect_uris: z.array(z.string().max(2048)).max(20).optional(),
  post_logout_redirect_uris: z.array(z.string().max(2048)).max(20).optional(),
  grant_types: z
    .array(z.enum(["authorization_code", "refresh_token", DEVICE_GRANT]))
    .min(1)
    .optional(),
  application_type: z.enum(["web", "native"]).optional(),
  first_party: z.boolean().optional(),
  backchannel_logout_uri: z.string().max(2048).optional(),
  backchannel_logout_session_required: z.boolean().optional(),
  id_token_signed_response_alg: z.enum(["RS256", "EdDSA"]).optional(),
  scope: z
    .string()
    .regex(
      new RegExp(`^(${SCOPES.join("|")})( (${SCOPES.join("|")}))*$`),
      `a space-separated list of ${SCOPES.join(", ")}`,
    )
    .optional(),
});

const MIN_SECRET_LENGTH = 32;

function intSetting(env: Env, name: string, fallback: number, min: number, max: number, problems: string[]): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    problems.push(`${name} must be a whole number from ${min} to ${max} (got "${raw}")`);
    return fallback;
  }
  return value;
}

/** A URI a client registered: absolute, no fragment, https (http to this machine only, outside local mode). */
function checkUri(
  uri: string,
  where: string,
  { production, native }: { production: boolean; native: boolean },
  problems: string[],
): void {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    problems.push(`${where} "${uri}" is not an absolute URI`);
    return;
  }
  if (url.hash || uri.includes("#")) problems.push(`${where} "${uri}" must not have a fragment (#…)`);
  const web = url.protocol === "https:" || url.protocol === "http:";
  if (!web && !native) {
    problems.push(`${where} "${uri}" must be an https URL (a custom scheme needs "application_type": "native")`);
    return;
  }
  if (url.protocol === "http:" && production && !isLoopbackHost(url.hostname)) {
    problems.push(
      `${where} "${uri}" must be https in production: http is only for this machine (localhost, 127.0.0.1)`,
    );
  }
  if (native && url.protocol === "http:" && isLoopbackHost(url.hostname)) {
    // oidc-provider lets a native client's loopback redirect URI match any port (RFC 8252): not exact
    problems.push(
      `${where} "${uri}": a native client's loopback URI would match any port; use "application_type": "web" or the device flow`,
    );
  }
}

function checkClient(raw: unknown, index: number, production: boolean, problems: string[]): ProviderClient | undefined {
  const label = (id?: unknown) =>
    `OIDC_PROVIDER_CLIENTS_FILE: client ${typeof id === "string" && id ? `"${id}"` : `#${index + 1}`}`;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    problems.push(`${label()} must be a JSON object with client_id, redirect_uris, …`);
    return undefined;
  }
  const id = (raw as { client_id?: unknown }).client_id;
  for (const key of Object.keys(raw)) {
    if (!(FIELDS as readonly string[]).includes(key)) {
      problems.push(`${label(id)}: unknown field "${key}" (known: ${FIELDS.join(", ")})`);
    }
  }
  const parsed = clientSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      problems.push(`${label(id)}: ${issue.path.join(".") || "metadata"}: ${issue.message}`);
    }
    return undefined;
  }
  const c = parsed.data;
  const where = label(c.client_id);
  const before = problems.length;
  const auth = c.token_endpoint_auth_method ?? "client_secret_basic";
  if (auth !== "none" && (c.client_secret ?? "").length < MIN_SECRET_LENGTH) {
    problems.push(
      `${where}: client_secret of at least ${MIN_SECRET_LENGTH} characters is required for ${auth} (npm run gen:secret prints one), or set "token_endpoint_auth_method": "none" for a public client`,
    );
  }
  if (auth === "none" && c.client_secret !== undefined) {
    problems.push(`${where}: a public client ("token_endpoint_auth_method": "none") must not have a client_secret`);
  }
  const grants = c.grant_types ?? ["authorization_code"];
  const redirects = c.redirect_uris ?? [];
  if (grants.includes("authorization_code") && redirects.length === 0) {
    problems.push(`${where}: redirect_uris must list at least one URI for the authorization_code grant`);
  }
  if (grants.includes("refresh_token") && !grants.includes("authorization_code") && !grants.includes(DEVICE_GRANT)) {
    problems.push(`${where}: grant_types: refresh_token needs authorization_code or ${DEVICE_GRANT} beside it`);
  }
  const native = c.application_type === "native";
  redirects.forEach((uri, i) => checkUri(uri, `${where}: redirect_uris[${i}]`, { production, native }, problems));
  (c.post_logout_redirect_uris ?? []).forEach((uri, i) =>
    checkUri(uri, `${where}: post_logout_redirect_uris[${i}]`, { production, native }, problems),
  );
  if (c.backchannel_logout_uri !== undefined) {
    checkUri(c.backchannel_logout_uri, `${where}: backchannel_logout_uri`, { production, native: false }, problems);
  }
  if (problems.length > before) return undefined;
  return {
    ...c,
    token_endpoint_auth_method: auth,
    grant_types: grants,
    redirect_uris: redirects,
    post_logout_redirect_uris: c.post_logout_redirect_uris ?? [],
    response_types: grants.includes("authorization_code") ? ["code"] : [],
    first_party: c.first_party ?? false,
  };
}

/** Parse the clients file's text; every problem is one line naming the client and the field. */
export function parseProviderClients(text: string, production: boolean, problems: string[]): ProviderClient[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    problems.push(`OIDC_PROVIDER_CLIENTS_FILE is not valid JSON: ${error instanceof Error ? error.message : error}`);
    return [];
  }
  if (!Array.isArray(json) || json.length === 0) {
    problems.push('OIDC_PROVIDER_CLIENTS_FILE must hold a JSON array with at least one client: [{"client_id": …}]');
    return [];
  }
  const clients: ProviderClient[] = [];
  const seen = new Set<string>();
  json.forEach((raw, index) => {
    const id = (raw as { client_id?: unknown } | null)?.client_id;
    if (typeof id === "string" && seen.has(id)) {
      problems.push(`OIDC_PROVIDER_CLIENTS_FILE: client_id "${id}" is listed twice`);
      return;
    }
    if (typeof id === "string") seen.add(id);
    const client = checkClient(raw, index, production, problems);
    if (client) clients.push(client);
  });
  return clients;
}

/** OIDC_PROVIDER_*: the provider's settings, or undefined when no clients file is set (the provider is off). */
export function providerSettings(
  env: Env,
  cwd: string,
  production: boolean,
  problems: string[],
): ProviderSettings | undefined {
  const accessTokenTtlSeconds = intSetting(env, "OIDC_PROVIDER_ACCESS_TOKEN_TTL_SECONDS", 900, 60, 24 * 3600, problems);
  const refreshTokenTtlDays = intSetting(env, "OIDC_PROVIDER_REFRESH_TOKEN_TTL_DAYS", 14, 1, 365, problems);
  const refreshTokenMaxDays = intSetting(env, "OIDC_PROVIDER_REFRESH_TOKEN_MAX_DAYS", 90, 1, 3650, problems);
  const codeTtlSeconds = intSetting(env, "OIDC_PROVIDER_CODE_TTL_SECONDS", 60, 1, 600, problems);
  if (refreshTokenMaxDays < refreshTokenTtlDays) {
    problems.push("OIDC_PROVIDER_REFRESH_TOKEN_MAX_DAYS must be at least OIDC_PROVIDER_REFRESH_TOKEN_TTL_DAYS");
  }
  const file = env.OIDC_PROVIDER_CLIENTS_FILE?.trim();
  if (!file) return undefined;
  const resolved = path.resolve(cwd, file);
  let text: string;
  try {
    text = readFileSync(resolved, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "unreadable";
    problems.push(`OIDC_PROVIDER_CLIENTS_FILE: cannot read ${resolved} (${code})`);
    return undefined;
  }
  const clients = parseProviderClients(text, production, problems);
  return { clients, accessTokenTtlSeconds, refreshTokenTtlDays, refreshTokenMaxDays, codeTtlSeconds };
}
