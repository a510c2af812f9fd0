/** Short-lived Bearer tokens: EdDSA (Ed25519) JWTs that any service can verify from our JWKS. */
import type { KeyObject } from "node:crypto";
import { errors, jwtVerify, SignJWT, type JWTHeaderParameters } from "jose";
import type { KeyRing } from "#app/lib/context.server.ts";
import { deriveSigningKeys, type PublicJwk, type SigningKey } from "#app/lib/session/signing-keys.server.ts";

export interface AccessClaims {
  uid: string;
  sid: string;
  exp: number;
}

export type TokenCheck =
  | { ok: true; claims: AccessClaims }
  | { ok: false; reason: "expired"; claims: AccessClaims }
  | { ok: false; reason: "invalid" };

export interface TokenIdentity {
  /** `iss`: `urn:pwdless-gs:<CLUSTER_NAME>`; also names the cluster's signing key */
  issuer: string;
  /** `aud`: `urn:pwdless-gs:<CLUSTER_NAME>:api`, the APIs that accept this cluster's tokens */
  audience: string;
}

const MAX_FUTURE_IAT_SECONDS = 60;
const ALGORITHM = "EdDSA";

/**
 * Issues and verifies access tokens. Only EdDSA is accepted (no HS256, no `none`); `kid` must
 * name the current key or one of SECRET_KEY_BASE_PREVIOUS's, which stay published until removed.
 */
export class AccessTokens {
  private readonly signing: SigningKey;
  private readonly byKid: Map<string, KeyObject>;
  private readonly published: { keys: PublicJwk[] };

  constructor(
    keys: KeyRing,
    private readonly identity: TokenIdentity,
    readonly ttlSeconds: number,
    private readonly now: () => number,
  ) {
    const { current, previous } = deriveSigningKeys(keys, identity.issuer);
    this.signing = current;
    this.byKid = new Map([current, ...previous].map((k) => [k.kid, k.publicKey]));
    this.published = { keys: [current, ...previous].filter(unique).map((k) => k.jwk) };
  }

  get issuer(): string {
    return this.identity.issuer;
  }

  get audience(): string {
    return this.identity.audience;
  }

  /** The public keys, for `GET /.well-known/jwks.json`. */
  jwks(): { keys: PublicJwk[] } {
    return this.published;
  }

  async issue(uid: string, sid: string): Promise<string> {
    const iat = Math.floor(this.now() / 1000);
    return new SignJWT({ sid })
      .setProtectedHeader({ alg: ALGORITHM, typ: "JWT", kid: this.signing.kid })
      .setSubject(uid)
      .setIssuer(this.identity.issuer)
      .setAudience(this.identity.audience)
      .setIssuedAt(iat)
      .setExpirationTime(iat + this.ttlSeconds)
      .sign(this.signing.privateKey);
  }

  async verify(token: string): Promise<TokenCheck> {
    if (token.length > 2048) return { ok: false, reason: "invalid" };
    const getKey = (header: JWTHeaderParameters) => {
      const key = header.kid ? this.byKid.get(header.kid) : undefined;
      if (!key || header.alg !== ALGORITHM) throw new errors.JOSENotSupported("unknown key");
      return key;
    };
    const nowSeconds = Math.floor(this.now() / 1000);
    try {
      const { payload } = await jwtVerify(token, getKey, {
        algorithms: [ALGORITHM],
        issuer: this.identity.issuer,
        audience: this.identity.audience,
        currentDate: new Date(this.now()),
        requiredClaims: ["sub", "exp", "iat"],
      });
      const claims = this.claims(payload);
      if (!claims || (payload.iat ?? 0) > nowSeconds + MAX_FUTURE_IAT_SECONDS) return { ok: false, reason: "invalid" };
      return { ok: true, claims };
    } catch (error) {
      if (error instanceof errors.JWTExpired) {
        const claims = this.claims(error.payload);
        // an expired token is only worth a refresh when it was genuinely ours
        if (claims) return { ok: false, reason: "expired", claims };
      }
      return { ok: false, reason: "invalid" };
    }
  }

  private claims(payload: { sub?: unknown; sid?: unknown; exp?: unknown }): AccessClaims | null {
    const { sub, sid, exp } = payload;
    if (typeof sub !== "string" || typeof sid !== "string" || typeof exp !== "number") return null;
    return { uid: sub, sid, exp };
  }
}

/** A secret listed both as current and previous publishes its key once. */
function unique(key: SigningKey, index: number, all: SigningKey[]): boolean {
  return all.findIndex((k) => k.kid === key.kid) === index;
}
