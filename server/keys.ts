import { createHash, hkdfSync } from "node:crypto";
import type { AppKeys } from "#app/lib/context.server.ts";

/**
 * One subkey per purpose, so a leak or misuse of one cannot forge another's credentials: the
 * app's (declared in app/lib/context.server.ts) and the cluster's, which only server/ hands out.
 */
export interface Keys extends AppKeys {
  cluster: Uint8Array;
}

export interface KeyRing {
  current: Keys;
  /** from SECRET_KEY_BASE_PREVIOUS: accepted when opening and verifying, never used to issue */
  previous: Keys[];
}

const SALT = "pwdless-gs/v1";

function subkey(secret: string, purpose: string): Buffer {
  return Buffer.from(hkdfSync("sha256", secret, SALT, purpose, 32));
}

export function deriveKeys(secret: string): Keys {
  const token = subkey(secret, "access-token");
  const fingerprint = createHash("sha256").update(subkey(secret, "key-id")).digest();
  return {
    kid: fingerprint.subarray(0, 8).toString("base64url"),
    // iron password ids are numbers; 31 bits keeps them positive and exact
    sealId: fingerprint.readUInt32BE(8) & 0x7fffffff,
    cookie: subkey(secret, "session-cookie").toString("hex"),
    token: new Uint8Array(token),
    link: subkey(secret, "magic-link").toString("hex"),
    linkCookie: subkey(secret, "magic-link-cookie").toString("hex"),
    oauthCookie: subkey(secret, "oauth-cookie").toString("hex"),
    devOidcClient: subkey(secret, "dev-oidc-client").toString("base64url"),
    cluster: new Uint8Array(subkey(secret, "cluster-key")),
    audit: subkey(secret, "audit").toString("hex"),
    provider: new Uint8Array(subkey(secret, "oidc-provider")),
  };
}

export function deriveKeyRing(current: string, previous: string[]): KeyRing {
  return { current: deriveKeys(current), previous: previous.map(deriveKeys) };
}

/** The cluster's pre-shared key material: from CLUSTER_SECRET when set, else the secret's own subkey. */
export function clusterKeyFor(keys: KeyRing, clusterSecret: string | undefined): Uint8Array {
  if (!clusterSecret) return keys.current.cluster;
  return new Uint8Array(hkdfSync("sha256", clusterSecret, SALT, "cluster-key", 32));
}
