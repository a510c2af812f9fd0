// A tiny web app that signs people in with PwdlessGs, using openid-client (a certified OpenID
// Connect client): authorization code flow with PKCE, ID token, userinfo, refresh, and sign-out.
//
//   ISSUER=https://login.example.com CLIENT_ID=web CLIENT_SECRET=… PORT=4100 node examples/openid-client/web.mjs
//
// Register it in OIDC_PROVIDER_CLIENTS_FILE with redirect_uris [APP/callback] and
// post_logout_redirect_uris [APP/]. Sessions live in this process's memory: it is an example.
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import * as client from "openid-client";

const issuer = new URL(process.env.ISSUER ?? "http://localhost:3000");
const port = Number(process.env.PORT ?? 4100);
const host = process.env.HOST ?? "127.0.0.1";
const appUrl = process.env.APP_URL ?? `http://${host}:${port}`;
const redirectUri = `${appUrl}/callback`;

const config = await client.discovery(
  issuer,
  process.env.CLIENT_ID ?? "web",
  process.env.CLIENT_SECRET,
  undefined,
  // plain http is for a PwdlessGs on this machine only
  issuer.protocol === "http:" ? { execute: [client.allowInsecureRequests] } : undefined,
);

/** session id (a cookie) → { pending sign-in checks } or { tokens, claims, userinfo, refreshed } */
const sessions = new Map();

const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (body) =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Example app</title></head><body><h1>Example app</h1>${body}</body></html>`;

function sessionOf(req, res) {
  const id = /(?:^|;\s*)rp_session=([A-Za-z0-9_-]+)/.exec(req.headers.cookie ?? "")?.[1];
  if (id && sessions.has(id)) return sessions.get(id);
  const fresh = randomBytes(16).toString("base64url");
  const session = {};
  sessions.set(fresh, session);
  res.setHeader("Set-Cookie", `rp_session=${fresh}; HttpOnly; SameSite=Lax; Path=/`);
  return session;
}

function send(res, status, html, headers = {}) {
  res.writeHead(status, { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store", ...headers });
  res.end(html);
}

async function handle(req, res) {
  const url = new URL(req.url, appUrl);
  const session = sessionOf(req, res);
  if (url.pathname === "/" && req.method === "GET") {
    if (!session.claims) {
      return send(res, 200, page(`<p>You are not signed in.</p><p><a href="/login">Sign in with PwdlessGs</a></p>`));
    }
    return send(
      res,
      200,
      page(
        `<p>Signed in as <strong data-testid="rp-email">${escape(session.userinfo?.email ?? session.claims.email)}</strong></p>
<p>Subject: <code data-testid="rp-sub">${escape(session.claims.sub)}</code></p>
<p>Access token refreshed <span data-testid="rp-refreshed">${session.refreshed}</span> time(s).</p>
<form method="post" action="/refresh"><button type="submit">Refresh tokens</button></form>
<p><a href="/logout">Sign out</a></p>`,
      ),
    );
  }
  if (url.pathname === "/login") {
    session.verifier = client.randomPKCECodeVerifier();
    session.state = client.randomState();
    session.nonce = client.randomNonce();
    const to = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      // offline_access (a refresh token) needs prompt=consent; a first-party app is not asked
      scope: "openid email profile offline_access",
      prompt: "consent",
      code_challenge: await client.calculatePKCECodeChallenge(session.verifier),
      code_challenge_method: "S256",
      state: session.state,
      nonce: session.nonce,
    });
    return send(res, 302, "", { Location: to.href });
  }
  if (url.pathname === "/callback") {
    const tokens = await client.authorizationCodeGrant(config, url, {
      pkceCodeVerifier: session.verifier,
      expectedState: session.state,
      expectedNonce: session.nonce,
    });
    Object.assign(session, { tokens, claims: tokens.claims(), refreshed: 0 });
    session.userinfo = await client.fetchUserInfo(config, tokens.access_token, session.claims.sub);
    return send(res, 302, "", { Location: "/" });
  }
  if (url.pathname === "/refresh" && req.method === "POST" && session.tokens) {
    // each refresh token works once: PwdlessGs hands out the next one with every answer
    session.tokens = await client.refreshTokenGrant(config, session.tokens.refresh_token);
    session.refreshed += 1;
    session.userinfo = await client.fetchUserInfo(config, session.tokens.access_token, session.claims.sub);
    return send(res, 302, "", { Location: "/" });
  }
  if (url.pathname === "/logout") {
    const idToken = session.tokens?.id_token;
    for (const key of Object.keys(session)) delete session[key];
    if (!idToken) return send(res, 302, "", { Location: "/" });
    const to = client.buildEndSessionUrl(config, { id_token_hint: idToken, post_logout_redirect_uri: `${appUrl}/` });
    return send(res, 302, "", { Location: to.href });
  }
  send(res, 404, page("<p>Not found.</p>"));
}

createServer((req, res) => {
  handle(req, res).catch((error) => {
    console.error(error);
    send(res, 500, page(`<p role="alert">Sign-in failed: ${escape(error.message)}</p><p><a href="/">Back</a></p>`));
  });
}).listen(port, host, () => console.log(`example app on ${appUrl}, signing in with ${issuer.href}`));
