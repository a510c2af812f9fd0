/**
 * Who is signed in, as the provider sees it (PwdlessGs's own session cookie), and the grant an
 * authorization gets: first-party apps and apps the person allowed before get one without a page;
 * every grant is tied to the PwdlessGs session it was given in, so ending that session ends it.
 */
import type { IncomingMessage } from "node:http";
import type { Grant, KoaContextWithOIDC } from "oidc-provider";
import type { User } from "#app/lib/accounts/users.server.ts";
import type { SessionRow } from "#app/lib/session/sessions.server.ts";
import type { ProviderDeps } from "./deps.server";

export interface SignedIn {
  user: User;
  session: SessionRow;
}

/** The request's headers as the app's session checks read them. */
export function headersOf(req: IncomingMessage): { headers: { get(name: string): string | null } } {
  return {
    headers: {
      get(name) {
        const value = req.headers[name.toLowerCase()];
        if (value === undefined) return null;
        return Array.isArray(value) ? value.join(", ") : value;
      },
    },
  };
}

/**
 * The person signed in to PwdlessGs in this browser, or null: the session layer's read-only check
 * (these answers come from oidc-provider, not Remix, so nothing would carry a re-sealed cookie back;
 * the cookie's sliding renewal happens on the person's next page of ours).
 */
export async function ourSession(services: ProviderDeps["services"], req: IncomingMessage): Promise<SignedIn | null> {
  return services.auth.check(headersOf(req));
}

/** The OpenID scopes an authorization asks for (unknown scopes were refused before this). */
export function requestedScopes(ctx: KoaContextWithOIDC): string[] {
  return [...ctx.oidc.requestParamOIDCScopes];
}

export function isFirstParty(client: unknown): boolean {
  return (client as { first_party?: unknown } | undefined)?.first_party === true;
}

/**
 * oidc-provider's loadExistingGrant. No grant (so the login or consent prompt runs) when the
 * PwdlessGs session is missing or is someone else's, or the app is third-party and the person has
 * not allowed these scopes; else this session's grant for the app, widened to what is asked, or a new one.
 */
export async function grantFor(deps: ProviderDeps, ctx: KoaContextWithOIDC): Promise<Grant | undefined> {
  const { oidc } = ctx;
  const client = oidc.client!;
  const accountId = oidc.session?.accountId;
  const ours = await ourSession(deps.services, ctx.req);
  if (!accountId || !ours || ours.user.id !== accountId) return undefined;
  const scopes = requestedScopes(ctx);
  const firstParty = isFirstParty(client);
  const ids = deps.services.users.idsOf(ours.user);
  if (!firstParty && !deps.consents.covers(ids, client.clientId, scopes)) return undefined;

  const existingId = oidc.result?.consent?.grantId ?? oidc.session!.grantIdFor(client.clientId);
  if (existingId && deps.rows.table("Grant").get(existingId)?.s === ours.session.sid) {
    const existing = await oidc.provider.Grant.find(existingId);
    if (existing && existing.accountId === accountId) {
      const granted = new Set(existing.getOIDCScope().split(" "));
      if (scopes.some((scope) => !granted.has(scope))) {
        existing.addOIDCScope(scopes.join(" "));
        await existing.save();
      }
      return existing;
    }
  }
  const grant = new oidc.provider.Grant({ accountId, clientId: client.clientId });
  grant.addOIDCScope(scopes.join(" "));
  const grantId = await grant.save();
  deps.rows.bindGrant(grantId, ours.session.sid);
  if (deps.consents.remember(ours.user.id, client.clientId, scopes, firstParty)) {
    deps.audit.record("app-authorized", { uid: ours.user.id, client: client.clientId, scopes, firstParty });
  }
  return grant;
}
