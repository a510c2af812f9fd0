/**
 * The access tokens' Ed25519 key pairs: derived from each secret's token subkey and the issuer
 * (so every node of a cluster signs with the same key, and another cluster with another one),
 * named by their RFC 7638 thumbprint, and published as a JWKS for services without the secret.
 */
import { createHash, createPrivateKey, createPublicKey, hkdfSync, type KeyObject } from "node:crypto";
import type { KeyRing } from "#app/lib/context.server.ts";

export interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  jwk: PublicJwk;
}

export interface PublicJwk {
  kty: "OKP";
  crv: "Ed25519";
  x: string;
  kid: string;
  alg: "EdDSA";
  use: "sig";
}

// PKCS #8 wrapping of a raw 32-byte Ed25519 seed (RFC 8410): node:crypto takes keys in this form
const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

/** One key pair from a secret's token subkey; the issuer names the cluster. */
export function deriveSigningKey(tokenSubkey: Uint8Array, issuer: string): SigningKey {
  const seed = Buffer.from(hkdfSync("sha256", tokenSubkey, "pwdless-gs/v1/ed25519", `access-token:${issuer}`, 32));
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]),
    format: "der",
    type: "pkcs8",
  });
  const publicKey = createPublicKey(privateKey);
  const x = publicKey.export({ format: "jwk" }).x!;
  // RFC 7638: the thumbprint of the required members in lexicographic order
  const kid = createHash("sha256")
    .update(JSON.stringify({ crv: "Ed25519", kty: "OKP", x }))
    .digest("base64url");
  return { kid, privateKey, publicKey, jwk: { kty: "OKP", crv: "Ed25519", x, kid, alg: "EdDSA", use: "sig" } };
}

/** The current key (signs) and the previous secrets' keys (verify only), derived once per process. */
export function deriveSigningKeys(keys: KeyRing, issuer: string): { current: SigningKey; previous: SigningKey[] } {
  return {
    current: deriveSigningKey(keys.current.token, issuer),
    previous: keys.previous.map((k) => deriveSigningKey(k.token, issuer)),
  };
}
