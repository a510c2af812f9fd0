import { createPrivateKey, createPublicKey, randomBytes, sign, verify } from "node:crypto";
import { describe, expect, it } from "vitest";
import { deriveCookieKeys, deriveProviderKeys } from "../../app/lib/provider/keys.server";

describe("the OpenID provider's signing keys", () => {
  it("are the same for the same secret (every node), different for another, and sign and verify", async () => {
    const subkey = randomBytes(32);
    const [rsa, ed] = await deriveProviderKeys(subkey, []);
    const [rsaAgain, edAgain] = await deriveProviderKeys(Uint8Array.from(subkey), []);
    expect(rsaAgain).toEqual(rsa);
    expect(edAgain).toEqual(ed);
    const [otherRsa, otherEd] = await deriveProviderKeys(randomBytes(32), []);
    expect(otherRsa!.n).not.toBe(rsa!.n);
    expect(otherEd!.x).not.toBe(ed!.x);

    const rsaKey = createPrivateKey({ key: rsa!, format: "jwk" });
    expect(rsaKey.asymmetricKeyDetails).toMatchObject({ modulusLength: 2048, publicExponent: 65537n });
    const message = Buffer.from("signed by every node alike");
    expect(verify("sha256", message, createPublicKey(rsaKey), sign("sha256", message, rsaKey))).toBe(true);
    const edKey = createPrivateKey({ key: ed!, format: "jwk" });
    expect(verify(null, message, createPublicKey(edKey), sign(null, message, edKey))).toBe(true);
    expect(rsa).toMatchObject({ alg: "RS256", use: "sig" });
    expect(ed).toMatchObject({ alg: "EdDSA", use: "sig", crv: "Ed25519" });
  });

  it("name each key by its RFC 7638 thumbprint, and list the current secret's keys before the previous ones'", async () => {
    const current = randomBytes(32);
    const previous = randomBytes(32);
    const keys = await deriveProviderKeys(current, [previous]);
    expect(keys.map((k) => k.alg)).toEqual(["RS256", "EdDSA", "RS256", "EdDSA"]);
    const [alone] = await deriveProviderKeys(previous, []);
    expect(keys[2]!.kid).toBe(alone!.kid);
    // RFC 7638 §3.1's example key and thumbprint
    const { createHash } = await import("node:crypto");
    const thumb = createHash("sha256")
      .update(JSON.stringify({ e: keys[0]!.e, kty: "RSA", n: keys[0]!.n }))
      .digest("base64url");
    expect(keys[0]!.kid).toBe(thumb);
    expect(new Set(keys.map((k) => k.kid)).size).toBe(4);
  });

  it("derive cookie keys per secret, the current one first", () => {
    const [a, b] = [randomBytes(32), randomBytes(32)];
    const keys = deriveCookieKeys(a, [b]);
    expect(keys).toHaveLength(2);
    expect(deriveCookieKeys(a, [])[0]).toBe(keys[0]);
    expect(keys[0]).not.toBe(keys[1]);
  });
});
