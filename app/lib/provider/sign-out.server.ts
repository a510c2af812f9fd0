/**
 * Sign-out reaches the apps: when this node ends a PwdlessGs session (sign-out, sign-out
 * everywhere, ended from /account, theft detection), every grant given in that session is revoked
 * (one replicated row each, so its refresh and access tokens are refused on every node), and each
 * app that registered a `backchannel_logout_uri` is told with an OpenID back-channel logout token.
 */
import type Provider from "oidc-provider";

/** oidc-provider's Client has this method (backchannelLogout feature); its type declarations miss it */
interface BackChannelClient {
  backchannelLogout(sub: string, sid: string): Promise<void>;
}
import type { ProviderDeps } from "./deps.server";

export class AppSignOut {
  private readonly stopListening: () => void;

  constructor(
    private readonly deps: ProviderDeps,
    /** the loaded provider, to sign logout tokens; loaded on demand */
    private readonly provider: () => Promise<Provider>,
  ) {
    // a revocation arriving from a peer was acted on by the node that wrote it
    this.stopListening = deps.services.sessions.onRevoked((sid, reason) => this.sessionEnded(sid, reason));
  }

  stop(): void {
    this.stopListening();
  }

  /** Revoke the session's grants now (synchronously, inside the request that ended it), then tell the apps. */
  sessionEnded(sid: string, reason: string): void {
    const { rows } = this.deps;
    const told: Array<{ clientId: string; accountId: string; sidClaim: string | undefined }> = [];
    for (const grantId of [...rows.grantsOfSession(sid)]) {
      const grant = rows.table("Grant").get(grantId);
      if (!grant || !rows.revokeFamily(grantId, `session-${reason}`)) continue;
      told.push({
        clientId: String(grant.p.clientId),
        accountId: String(grant.p.accountId),
        sidClaim: rows.sidClaimOf(grantId),
      });
    }
    if (told.length > 0) void this.backChannel(told);
  }

  private async backChannel(
    grants: Array<{ clientId: string; accountId: string; sidClaim: string | undefined }>,
  ): Promise<void> {
    const registered = new Set(
      this.deps.settings.clients.filter((c) => c.backchannel_logout_uri).map((c) => c.client_id),
    );
    const due = grants.filter((g) => registered.has(g.clientId));
    if (due.length === 0) return;
    let provider: Provider;
    try {
      provider = await this.provider();
    } catch (error) {
      this.deps.log.error("back-channel logout: the OpenID provider could not load", { error });
      return;
    }
    const sent = new Set<string>();
    for (const { clientId, accountId, sidClaim } of due) {
      const once = `${clientId} ${accountId} ${sidClaim ?? ""}`;
      if (sent.has(once)) continue;
      sent.add(once);
      try {
        const client = await provider.Client.find(clientId);
        if (!client) continue;
        await (client as unknown as BackChannelClient).backchannelLogout(accountId, sidClaim ?? "");
        this.deps.log.info("back-channel logout sent", { event: "backchannel-logout", client: clientId });
      } catch (error) {
        this.deps.log.warn("back-channel logout failed", {
          event: "backchannel-logout-failed",
          client: clientId,
          reason: error instanceof Error ? error.message : String(error),
        });
      }
    }
  }
}
