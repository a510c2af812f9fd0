import { errors, jwtVerify, SignJWT, type JWTHeaderParameters } from "jose";
import type { KeyRing } from "#app/lib/context.server.ts";

export interface AccessClaims {
  uid: string;
  sid: string;
  exp: number;
}

export type TokenCheck =
  | { ok: true; claims: AccessClaims }
  | { ok: false; reason: "expired"; claims: AccessClaims }
  | { ok: false; reason: "invalid" };

const MAX_FUTURE_IAT_SECONDS = 60;

/** Short-lived HS256 Bearer tokens; `kid` names the key so rotated secrets still verify. */
export class AccessTokens {
  private readonly byKid: Map<string, Uint8Array>;

  constructor(
    private readonly keys: KeyRing,
    private readonly issuer: string,
    readonly ttlSeconds: number,
    private readonly now: () => number,
  ) {
    this.byKid = new Map([...keys.previous, keys.current].map((k) => [k.kid, k.token]));
  }

  async issue(uid: string, sid: string): Promise<string> {
    const iat = Math.floor(this.now() / 1000);
    return new SignJWT({ sid })
      .setProtectedHeader({ alg: "HS256", typ: "JWT", kid: this.keys.current.kid })
      .setSubject(uid)
      .setIssuer(this.issuer)
      .setIssuedAt(iat)
      .setExpirationTime(iat + this.ttlSeconds)
      .sign(this.keys.current.token);
  }

  async verify(token: string): Promise<TokenCheck> {
    if (token.length > 2048) return { ok: false, reason: "invalid" };
    const getKey = (header: JWTHeaderParameters) => {
      const key = header.kid ? this.byKid.get(header.kid) : undefined;
      if (!key || header.alg !== "HS256") throw new errors.JOSENotSupported("unknown key");
      return key;
    };
    const nowSeconds = Math.floor(this.now() / 1000);
    try {
      const { payload } = await jwtVerify(token, getKey, {
        algorithms: ["HS256"],
        issuer: this.issuer,
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
