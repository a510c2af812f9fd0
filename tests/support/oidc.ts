// An app signing people in through PwdlessGs's OpenID provider, scripted: a browser's redirects
// with a cookie jar, the emailed code, PKCE, and the app's back-channel calls.
import { createHash, randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { CookieJar } from "./cookie-jar";
import { form } from "./flows";
import { tempDir } from "./node";
import { codeIn, type TestSmtpServer } from "./smtp";
import { waitFor } from "./wait";

/** Anything that answers HTTP for the site: a node, or the balancer in front of several. */
export interface Site {
  readonly url: string;
  fetch(pathname: string, init?: RequestInit): Promise<Response>;
}

export const SECRET = "test-client-secret-0123456789abcdef0123";

export interface TestClient {
  client_id: string;
  client_secret?: string;
  redirect_uris?: string[];
  [field: string]: unknown;
}

/** Write a clients file and return its path (and the clients, for the test's own use). */
export function clientsFile(clients: TestClient[]): string {
  const file = path.join(tempDir("pwdless-oidc-clients"), "clients.json");
  writeFileSync(file, JSON.stringify(clients, null, 2));
  return file;
}

/** A first-party confidential web app with refresh tokens, and a device-flow CLI; the usual pair. */
export function standardClients(redirectUri = "http://127.0.0.1:9/callback"): TestClient[] {
  return [
    {
      client_id: "web",
      client_name: "Team Web App",
      client_secret: SECRET,
      redirect_uris: [redirectUri],
      post_logout_redirect_uris: [new URL("/", redirectUri).href],
      grant_types: ["authorization_code", "refresh_token"],
      first_party: true,
    },
    {
      client_id: "cli",
      client_name: "Team CLI",
      token_endpoint_auth_method: "none",
      grant_types: ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
      first_party: true,
    },
    {
      client_id: "spa",
      client_name: "Partner App",
      token_endpoint_auth_method: "none",
      redirect_uris: ["http://127.0.0.1:9/spa"],
      grant_types: ["authorization_code", "refresh_token"],
    },
  ];
}

export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString("base64url");
  return { verifier, challenge: createHash("sha256").update(verifier).digest("base64url") };
}

/** A request with the jar's cookies; keeps what the answer sets. */
export async function visit(site: Site, jar: CookieJar, pathname: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (jar.header()) headers.set("Cookie", jar.header());
  const response = await site.fetch(pathname, { ...init, headers, redirect: "manual" });
  jar.take(response);
  return response;
}

/** Sign in on the site with the emailed code (real SMTP), starting from /login?redirectTo=… */
export async function signInWithCode(
  site: Site,
  jar: CookieJar,
  email: string,
  smtp: TestSmtpServer,
  redirectTo = "/account",
): Promise<string> {
  const before = smtp.to(email).length;
  const asked = await visit(site, jar, "/login", form({ email, redirectTo }));
  if (asked.status !== 302) throw new Error(`POST /login answered ${asked.status}`);
  const mail = await waitFor(`a mail to ${email}`, () => smtp.to(email)[before]);
  const typed = await visit(site, jar, "/login/sent", form({ code: codeIn(mail) }));
  if (typed.status !== 302) throw new Error(`typing the code answered ${typed.status}: ${await typed.text()}`);
  return typed.headers.get("location")!;
}

export interface AuthorizeResult {
  /** the final redirect to the app, when there was one */
  redirect?: URL;
  /** the last answer when the flow stopped on a page of ours (consent, an error page) */
  stoppedAt?: { path: string; status: number; body: string };
}

/**
 * Follow the browser's redirects from the authorization endpoint: through the interaction, and
 * /login (signing in with the emailed code when `signIn` is given), until the app's redirect URI.
 */
export async function authorize(
  site: Site,
  jar: CookieJar,
  params: Record<string, string>,
  signIn?: { email: string; smtp: TestSmtpServer },
): Promise<AuthorizeResult> {
  return follow(site, jar, await visit(site, jar, `/oidc/auth?${new URLSearchParams(params)}`), signIn);
}

/** Follow a browser's redirects from this answer on, signing in on /login when asked and `signIn` is given. */
export async function follow(
  site: Site,
  jar: CookieJar,
  first: Response,
  signIn?: { email: string; smtp: TestSmtpServer },
): Promise<AuthorizeResult> {
  let res = first;
  let next = new URL(res.url || site.url).pathname;
  for (let hop = 0; hop < 20; hop += 1) {
    if (hop > 0) res = await visit(site, jar, next);
    const location = res.headers.get("location");
    if (res.status >= 300 && res.status < 400 && location) {
      const target = new URL(location, site.url);
      if (target.origin !== new URL(site.url).origin) return { redirect: target };
      if (target.pathname === "/login" && signIn) {
        await res.body?.cancel();
        next = await signInWithCode(site, jar, signIn.email, signIn.smtp, target.searchParams.get("redirectTo")!);
        continue;
      }
      await res.body?.cancel();
      next = `${target.pathname}${target.search}`;
      continue;
    }
    return { stoppedAt: { path: next, status: res.status, body: await res.text() } };
  }
  throw new Error("too many redirects");
}

export function codeFrom(result: AuthorizeResult): string {
  const code = result.redirect?.searchParams.get("code");
  if (!code) throw new Error(`no code: ${JSON.stringify(result.stoppedAt ?? result.redirect?.href)}`);
  return code;
}

export const basic = (id: string, secret = SECRET) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString("base64")}`;

/** POST the token endpoint as an app's server would (no cookies, no Origin). */
export async function token(
  site: Site,
  fields: Record<string, string>,
  client: { id: string; secret?: string } = { id: "web", secret: SECRET },
): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers: Record<string, string> = { "Content-Type": "application/x-www-form-urlencoded" };
  const body = new URLSearchParams(fields);
  if (client.secret) headers.Authorization = basic(client.id, client.secret);
  else body.set("client_id", client.id);
  const res = await site.fetch("/oidc/token", { method: "POST", headers, body: body.toString() });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** The token request fields that exchange a code from `codeFlow`. */
export const codeGrant = (c: { code: string; verifier: string; redirectUri: string }) => ({
  grant_type: "authorization_code",
  code: c.code,
  code_verifier: c.verifier,
  redirect_uri: c.redirectUri,
});

/** The token request fields of a refresh (a rotation). */
export const refreshGrant = (refreshToken: unknown) => ({
  grant_type: "refresh_token",
  refresh_token: String(refreshToken),
});

export async function userinfo(site: Site, accessToken: string): Promise<Response> {
  return site.fetch("/oidc/me", { headers: { Authorization: `Bearer ${accessToken}` } });
}

/** A full code flow for a first-party app (the web app by default): sign in when the jar is not yet, get a code. */
export async function codeFlow(
  site: Site,
  jar: CookieJar,
  signIn?: { email: string; smtp: TestSmtpServer },
  { clientId = "web", scope = "openid email profile offline_access" }: { clientId?: string; scope?: string } = {},
): Promise<{ code: string; verifier: string; redirectUri: string }> {
  const { verifier, challenge } = pkce();
  const redirectUri = "http://127.0.0.1:9/callback";
  const result = await authorize(
    site,
    jar,
    {
      client_id: clientId,
      response_type: "code",
      redirect_uri: redirectUri,
      scope,
      // offline_access needs prompt=consent (OpenID Connect Core §11); a first-party app is not asked
      prompt: "consent",
      state: randomBytes(8).toString("hex"),
      nonce: randomBytes(8).toString("hex"),
      code_challenge: challenge,
      code_challenge_method: "S256",
    },
    signIn,
  );
  return { code: codeFrom(result), verifier, redirectUri };
}

/** The hidden xsrf field of one of the provider's forms. */
export function xsrfIn(page: string): string {
  const match = /name="xsrf" value="([^"]+)"/.exec(page);
  if (!match) throw new Error(`no xsrf field in:\n${page.slice(0, 500)}`);
  return match[1]!;
}

export interface DeviceStart {
  device_code: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete: string;
  interval: number;
}

/** A CLI starts the device flow (RFC 8628). */
export async function startDevice(
  site: Site,
  clientId = "cli",
  scope = "openid email offline_access",
): Promise<DeviceStart> {
  const res = await site.fetch("/oidc/device/auth", {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ client_id: clientId, scope }).toString(),
  });
  if (res.status !== 200) throw new Error(`device authorization answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as DeviceStart;
}

/** The CLI's one poll of the token endpoint. */
export function pollDevice(site: Site, deviceCode: string, clientId = "cli") {
  return token(
    site,
    { grant_type: "urn:ietf:params:oauth:grant-type:device_code", device_code: deviceCode },
    { id: clientId },
  );
}

/** A person types the user code on /device, confirms, signs in if needed: the final page. */
export async function approveDevice(
  site: Site,
  jar: CookieJar,
  userCode: string,
  signIn?: { email: string; smtp: TestSmtpServer },
): Promise<AuthorizeResult> {
  const page = await visit(site, jar, "/device");
  const typed = await visit(site, jar, "/device", form({ xsrf: xsrfIn(await page.text()), user_code: userCode }));
  const confirm = await typed.text();
  if (!confirm.includes('name="confirm"'))
    return { stoppedAt: { path: "/device", status: typed.status, body: confirm } };
  const confirmed = await visit(
    site,
    jar,
    "/device",
    form({ xsrf: xsrfIn(confirm), user_code: userCode, confirm: "yes" }),
  );
  return follow(site, jar, confirmed, signIn);
}

export { CookieJar };
