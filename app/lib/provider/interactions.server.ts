/**
 * Koa middleware in front of oidc-provider's routes. `requestSafety`: every provider URL and
 * cookie follows APP_URL, an answer that wrote waits until the writes are durable, and an
 * RP-initiated sign-out ends the PwdlessGs session too. `interactionRoutes`: the login prompt is
 * PwdlessGs's own /login (skipped when signed in), the consent prompt a page of ours.
 */
import type { IncomingMessage } from "node:http";
import type Provider from "oidc-provider";
import type { KoaContextWithOIDC } from "oidc-provider";
import { ClusterUnavailableError } from "#cluster";
import type { ProviderDeps } from "./deps.server";
import { isFirstParty, ourSession } from "./grants.server";
import * as pages from "./pages.server";
import { BACK_CHANNEL } from "./paths.server";

const INTERACTION = /^\/oidc\/interaction\/([A-Za-z0-9_-]{1,64})(\/consent)?$/;
const FORM_LIMIT_BYTES = 8 * 1024;

type Interaction = Awaited<ReturnType<Provider["interactionDetails"]>>;
type Middleware = (ctx: KoaContextWithOIDC, next: () => Promise<unknown>) => Promise<unknown>;

function html(ctx: KoaContextWithOIDC, status: number, body: string): void {
  ctx.status = status;
  ctx.type = "html";
  ctx.body = body;
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  if (!String(req.headers["content-type"] ?? "").startsWith("application/x-www-form-urlencoded")) {
    return new URLSearchParams();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > FORM_LIMIT_BYTES) return new URLSearchParams();
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
}

export function requestSafety(deps: ProviderDeps, provider: Provider): Middleware {
  const { config, cluster, services, audit, log } = deps;
  const signedOutHere = new WeakSet<object>();
  const refusedStore = new WeakSet<object>();
  provider.on("end_session.success", (ctx: KoaContextWithOIDC) => signedOutHere.add(ctx));
  provider.on("server_error", (ctx: KoaContextWithOIDC, error: unknown) => {
    if (error instanceof ClusterUnavailableError) refusedStore.add(ctx);
  });

  /** RP-initiated logout with "Sign out": the PwdlessGs session of the same person ends (on every node). */
  async function endOurSession(ctx: KoaContextWithOIDC): Promise<void> {
    // "Stay signed in" ends only the app's grant; "Sign out" (logout=yes) ends the provider's session
    const session = ctx.oidc.session;
    if (ctx.oidc.params?.logout === undefined || !session?.accountId) return;
    const ours = await ourSession(services, ctx.req);
    if (!ours || ours.user.id !== session.accountId) return;
    services.auth.signOut(ours.session, "this");
    audit.record("sign-out", {
      uid: ours.user.id,
      scope: "this",
      via: "openid-provider",
      client: ctx.oidc.client?.clientId,
    });
    ctx.append("Set-Cookie", services.auth.clearCookie());
  }

  function unavailable(ctx: KoaContextWithOIDC, error: unknown): void {
    log.error("an OpenID provider answer could not be made durable; answered 503", {
      event: "unavailable",
      path: ctx.path,
      error: error instanceof Error ? error.message : String(error),
    });
    ctx.remove("Location");
    ctx.set("Retry-After", "30");
    ctx.status = 503;
    const message = "The sign-in service cannot store changes right now. Please try again in a moment.";
    if (BACK_CHANNEL.has(ctx.path) || ctx.accepts("json", "html") === "json") {
      ctx.body = { error: "temporarily_unavailable", error_description: message };
    } else {
      ctx.type = "html";
      ctx.body = pages.problemPage(pages.pageContext(ctx.req, config), "unavailable");
    }
  }

  return async (ctx, next) => {
    // the provider's URLs and cookies are APP_URL's, whatever name or proxy the request came through
    // (the host was checked before; a Secure cookie needs koa to see https behind a TLS proxy)
    ctx.req.headers.host = config.appUrl.host;
    ctx.req.headers["x-forwarded-proto"] = config.appUrl.protocol.replace(":", "");
    delete ctx.req.headers["x-forwarded-host"];
    ctx.req.headers["x-forwarded-for"] = (ctx.req as { ip?: string }).ip ?? ctx.req.socket.remoteAddress ?? "";
    const writesBefore = cluster.store.counters.localWrites;
    try {
      await next();
    } catch (error) {
      // oidc-provider answers its own errors; anything that escapes is ours: logged once, a plain 500
      log.error("unexpected error in the OpenID provider", { path: ctx.path, method: ctx.method, error });
      ctx.status = 500;
      ctx.remove("Location");
      if (BACK_CHANNEL.has(ctx.path)) ctx.body = { error: "server_error", error_description: "Something went wrong." };
      else html(ctx, 500, pages.problemPage(pages.pageContext(ctx.req, config), "failed"));
      return;
    }
    if (signedOutHere.has(ctx)) await endOurSession(ctx);
    if (refusedStore.has(ctx)) return unavailable(ctx, new ClusterUnavailableError("disk", "a write was refused"));
    if (ctx.status === 404 && ctx.body === undefined) {
      html(ctx, 404, pages.problemPage(pages.pageContext(ctx.req, config), "not-found"));
    }
    // acknowledged means durable: a code, a token or a consent is only told once its rows are kept
    if (cluster.store.counters.localWrites !== writesBefore) {
      try {
        await cluster.durable();
      } catch (error) {
        if (!(error instanceof ClusterUnavailableError)) throw error;
        unavailable(ctx, error);
      }
    }
  };
}

export function interactionRoutes(
  deps: ProviderDeps,
  provider: Provider,
  clientNames: ReadonlyMap<string, string>,
): Middleware {
  const { config, services, settings, consents, audit } = deps;
  const firstParty = new Map(settings.clients.map((c) => [c.client_id, isFirstParty(c)]));

  const expired = (ctx: KoaContextWithOIDC) =>
    html(ctx, 400, pages.problemPage(pages.pageContext(ctx.req, config), "expired"));

  async function finish(ctx: KoaContextWithOIDC, result: Record<string, unknown>, merge: boolean): Promise<void> {
    const to = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: merge });
    ctx.status = 303;
    ctx.redirect(to);
  }

  const scopesOf = (details: Interaction) =>
    String(details.params.scope ?? "")
      .split(" ")
      .filter((s) => ["openid", "email", "profile", "offline_access"].includes(s));

  async function show(ctx: KoaContextWithOIDC, details: Interaction): Promise<void> {
    const ours = await ourSession(services, ctx.req);
    const signIn = () => {
      ctx.status = 303;
      ctx.redirect(`/login?redirectTo=${encodeURIComponent(`/oidc/interaction/${details.uid}`)}`);
    };
    const login = (who: NonNullable<typeof ours>) => ({
      login: { accountId: who.user.id, ts: Math.floor(who.session.createdAt / 1000) },
    });
    const { prompt } = details;
    if (prompt.name === "login") {
      // prompt=login and max_age ask for a sign-in made for this request, not an older session
      const fresh = prompt.reasons.includes("login_prompt") || prompt.reasons.includes("max_age");
      if (!ours || (fresh && ours.session.createdAt < (details.iat ?? 0) * 1000)) return signIn();
      return finish(ctx, login(ours), false);
    }
    if (prompt.name === "consent") {
      if (!ours) return signIn();
      if (ours.user.id !== details.session?.accountId) return finish(ctx, login(ours), false);
      const clientId = String(details.params.client_id);
      if (firstParty.get(clientId)) return finish(ctx, { consent: {} }, true);
      return html(
        ctx,
        200,
        pages.consentPage(pages.pageContext(ctx.req, config), {
          uid: details.uid,
          client: clientNames.get(clientId) ?? clientId,
          email: ours.user.email,
          scopes: scopesOf(details),
        }),
      );
    }
    return expired(ctx);
  }

  async function decide(ctx: KoaContextWithOIDC, details: Interaction): Promise<void> {
    const ours = await ourSession(services, ctx.req);
    if (!ours || ours.user.id !== details.session?.accountId || details.prompt.name !== "consent") {
      return expired(ctx);
    }
    const clientId = String(details.params.client_id);
    const form = await readForm(ctx.req);
    if (form.get("decision") !== "allow") {
      audit.record("refused", { uid: ours.user.id, reason: "app-consent-denied", client: clientId });
      return finish(ctx, { error: "access_denied", error_description: "The person did not allow access." }, false);
    }
    const scopes = scopesOf(details);
    if (consents.remember(ours.user.id, clientId, scopes, false)) {
      audit.record("app-authorized", { uid: ours.user.id, client: clientId, scopes, firstParty: false });
    }
    return finish(ctx, { consent: {} }, true);
  }

  return async (ctx, next) => {
    const match = INTERACTION.exec(ctx.path);
    if (!match) return next();
    ctx.set("Cache-Control", "no-store");
    let details: Interaction;
    try {
      details = await provider.interactionDetails(ctx.req, ctx.res);
    } catch {
      return expired(ctx);
    }
    if (details.uid !== match[1]) return expired(ctx);
    if (ctx.method === "GET" && !match[2]) return show(ctx, details);
    if (ctx.method === "POST" && match[2]) return decide(ctx, details);
    html(ctx, 405, pages.problemPage(pages.pageContext(ctx.req, config), "not-allowed"));
  };
}
