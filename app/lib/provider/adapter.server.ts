/**
 * oidc-provider's adapter over the replicated tables (ProviderRows): one instance per model. Finds
 * refuse grants and tokens of a revoked family or an ended PwdlessGs session; `consume` is the
 * cluster-wide single use (SingleUse), and a lost race revokes the family as a replay does.
 */
import { errors, type Adapter, type AdapterPayload } from "oidc-provider";
import type { ProviderDeps } from "./deps.server";
import { GRANTABLE, MODELS, type Model, type Payload } from "./rows.server";

/** An OAuth error with a status: what the adapter throws when nobody can decide a single use. */
function unavailable(): Error {
  const error = new errors.CustomOIDCProviderError(
    "temporarily_unavailable",
    "the node that must decide this single use cannot be reached; try again in a moment",
  );
  Object.assign(error, { status: 503, statusCode: 503, expose: true });
  return error;
}

const LABELS: Partial<Record<Model, string>> = {
  AuthorizationCode: "authorization code",
  RefreshToken: "refresh token",
  DeviceCode: "device code",
};

/** oidc-provider's adapter, one instance per model, over ProviderRows and SingleUse. */
export function adapterFor(deps: ProviderDeps) {
  const { rows, singleUse, services, audit } = deps;

  async function lookup(model: Model, id: string): Promise<Payload | undefined> {
    const row = await rows.get(model, id);
    if (!row) return undefined;
    // a grant, and every token under it, is refused once its family is revoked or the PwdlessGs
    // session it was given in has ended; an Interaction only names a grant, and outlives it
    if (model === "Grant" || GRANTABLE.includes(model)) {
      const grantId = model === "Grant" ? id : row.g;
      if (rows.isRevoked(grantId)) return undefined;
      const sid = model === "Grant" ? row.s : grantId ? rows.table("Grant").get(grantId)?.s : undefined;
      if (sid && !services.sessions.findActive(sid)) return undefined;
    }
    const payload = structuredClone(row.p);
    const usedAt = rows.usedAt(model, id);
    if (usedAt !== undefined) {
      payload.consumed = Math.floor(usedAt / 1000);
      if (model === "RefreshToken" || model === "AuthorizationCode") {
        // oidc-provider revokes the family on seeing it: say who and what, once per replay
        audit.record("refresh-reuse", {
          uid: String(payload.accountId ?? ""),
          reason: `${LABELS[model]} used twice`,
          client: payload.clientId,
          via: "openid-provider",
        });
      }
    }
    return payload;
  }

  return class ClusterAdapter implements Adapter {
    private readonly model: Model | undefined;

    constructor(private readonly name: string) {
      this.model = (MODELS as readonly string[]).includes(name) ? (name as Model) : undefined;
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
      if (!this.model) throw new Error(`the OpenID provider keeps no ${this.name} rows`);
      rows.put(this.model, id, payload as Payload, expiresIn);
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      return this.model ? ((await lookup(this.model, id)) as AdapterPayload | undefined) : undefined;
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      const hit = await rows.findBySecond("Session", uid);
      return hit ? ((await lookup("Session", hit[0])) as AdapterPayload | undefined) : undefined;
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      const hit = await rows.findBySecond("DeviceCode", userCode);
      return hit ? ((await lookup("DeviceCode", hit[0])) as AdapterPayload | undefined) : undefined;
    }

    /** The one use, decided cluster-wide; the loser's family is revoked, as for a replay (RFC 6749 §4.1.2). */
    async consume(id: string): Promise<void> {
      if (!this.model) return;
      const outcome = await singleUse.consume(this.model, id);
      if (outcome === "ok") return;
      if (outcome === "unavailable") throw unavailable();
      const label = LABELS[this.model] ?? this.model;
      if (outcome === "used") {
        const grantId = rows.table(this.model).get(id)?.g;
        if (grantId && rows.revokeFamily(grantId, "replayed")) {
          audit.record("refresh-reuse", { reason: `${label} used twice at once`, via: "openid-provider" });
        }
        throw new errors.InvalidGrant(`${label} already used`);
      }
      throw new errors.InvalidGrant(`${label} not found`);
    }

    async destroy(id: string): Promise<void> {
      if (this.model) rows.delete(this.model, id);
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      rows.revokeFamily(grantId, "revoked");
    }
  };
}
