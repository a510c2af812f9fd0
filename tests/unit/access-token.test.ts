import { generateKeyPairSync } from "node:crypto";
import { SignJWT, UnsecuredJWT } from "jose";
import { describe, expect, it } from "vitest";
import { AccessTokens } from "#app/lib/session/access-token.server.ts";
import { deriveKeyRing } from "../../server/keys";

const UID = "0b6f4f4e-3d2a-4c8e-9a51-2f5c6d7e8f90";
const SID = "1c7a5b5f-4e3b-4d9f-8b62-3a6d7e8f9a01";

function tokens(current: string, previous: string[] = [], clock = { now: 1_700_000_000_000 }) {
  return {
    service: new AccessTokens(
      deriveKeyRing(current, previous),
      { issuer: "https://login.example.com", audience: "https://app.example.com" },
      900,
      () => clock.now,
    ),
    clock,
  };
}

describe("access tokens", () => {
  const secret = "current-secret-".repeat(3);

  it("issues EdDSA tokens with kid, sub, sid, iss, aud, iat and exp that verify", async () => {
    const { service } = tokens(secret);
    const token = await service.issue(UID, SID);
    const header = JSON.parse(Buffer.from(token.split(".")[0]!, "base64url").toString());
    expect(header).toEqual({ alg: "EdDSA", typ: "JWT", kid: service.jwks().keys[0]!.kid });
    const payload = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString());
    expect(payload).toMatchObject({
      sub: UID,
      sid: SID,
      iss: "https://login.example.com",
      aud: "https://app.example.com",
    });
    const check = await service.verify(token);
    expect(check).toMatchObject({ ok: true, claims: { uid: UID, sid: SID } });
  });

  it("signs with the same key on every node of a cluster, and another key in another cluster", async () => {
    const a = tokens(secret).service.jwks().keys[0]!;
    const b = tokens(secret).service.jwks().keys[0]!;
    expect(a).toEqual(b);
    expect(a).toMatchObject({ kty: "OKP", crv: "Ed25519", alg: "EdDSA", use: "sig" });
    expect(Buffer.from(a.x, "base64url")).toHaveLength(32);
    const elsewhere = new AccessTokens(
      deriveKeyRing(secret, []),
      { issuer: "urn:pwdless-gs:other", audience: "https://app.example.com" },
      900,
      () => Date.now(),
    );
    expect(elsewhere.jwks().keys[0]!.x).not.toBe(a.x);
    // the JWKS holds public keys only
    expect(Object.keys(a).sort()).toEqual(["alg", "crv", "kid", "kty", "use", "x"]);
  });

  it("refuses HS256 tokens, even made with the old HMAC key and a known kid, and a foreign Ed25519 key", async () => {
    const { service, clock } = tokens(secret);
    const ring = deriveKeyRing(secret, []);
    const kid = service.jwks().keys[0]!.kid;
    const base = () =>
      new SignJWT({ sid: SID })
        .setSubject(UID)
        .setIssuer("https://login.example.com")
        .setAudience("https://app.example.com")
        .setIssuedAt(Math.floor(clock.now / 1000))
        .setExpirationTime(Math.floor(clock.now / 1000) + 60);
    for (const k of [kid, ring.current.kid]) {
      const hs = await base().setProtectedHeader({ alg: "HS256", kid: k }).sign(ring.current.token);
      expect(await service.verify(hs)).toEqual({ ok: false, reason: "invalid" });
    }
    const foreign = generateKeyPairSync("ed25519").privateKey;
    const forged = await base().setProtectedHeader({ alg: "EdDSA", kid }).sign(foreign);
    expect(await service.verify(forged)).toEqual({ ok: false, reason: "invalid" });
    const wrongAudience = await base()
      .setAudience("https://elsewhere.example.com")
      .setProtectedHeader({ alg: "EdDSA", kid })
      .sign(generateKeyPairSync("ed25519").privateKey);
    expect(await service.verify(wrongAudience)).toEqual({ ok: false, reason: "invalid" });
  });

  it("reports expiry separately, only for genuine tokens", async () => {
    const { service, clock } = tokens(secret);
    const token = await service.issue(UID, SID);
    clock.now += 901_000;
    expect(await service.verify(token)).toMatchObject({ ok: false, reason: "expired", claims: { sid: SID } });
    const forged = tokens("another-secret-".repeat(3), [], clock).service;
    const foreign = await forged.issue(UID, SID);
    clock.now += 901_000;
    expect(await service.verify(foreign)).toEqual({ ok: false, reason: "invalid" });
  });

  it("refuses tampered payloads and signatures", async () => {
    const { service } = tokens(secret);
    const [h, p, s] = (await service.issue(UID, SID)).split(".");
    const otherPayload = Buffer.from(JSON.stringify({ sub: "someone-else", sid: SID, exp: 9e9, iat: 1 })).toString(
      "base64url",
    );
    expect((await service.verify(`${h}.${otherPayload}.${s}`)).ok).toBe(false);
    expect((await service.verify(`${h}.${p}.${s!.slice(0, -2)}xx`)).ok).toBe(false);
    expect((await service.verify(`${h}.${p}`)).ok).toBe(false);
  });

  it("refuses alg none, other algorithms, unknown kid and future iat", async () => {
    const { service, clock } = tokens(secret);
    const ring = deriveKeyRing(secret, []);
    const none = new UnsecuredJWT({ sid: SID })
      .setSubject(UID)
      .setIssuer("https://login.example.com")
      .setIssuedAt()
      .setExpirationTime("1h")
      .encode();
    expect(await service.verify(none)).toEqual({ ok: false, reason: "invalid" });

    const hs512 = await new SignJWT({ sid: SID })
      .setProtectedHeader({ alg: "HS512", kid: ring.current.kid })
      .setSubject(UID)
      .setIssuer("https://login.example.com")
      .setIssuedAt(Math.floor(clock.now / 1000))
      .setExpirationTime(Math.floor(clock.now / 1000) + 60)
      .sign(new Uint8Array(64).fill(1));
    expect(await service.verify(hs512)).toEqual({ ok: false, reason: "invalid" });

    const unknownKid = await new SignJWT({ sid: SID })
      .setProtectedHeader({ alg: "HS256", kid: "not-a-key" })
      .setSubject(UID)
      .setIssuer("https://login.example.com")
      .setIssuedAt(Math.floor(clock.now / 1000))
      .setExpirationTime(Math.floor(clock.now / 1000) + 60)
      .sign(ring.current.token);
    expect(await service.verify(unknownKid)).toEqual({ ok: false, reason: "invalid" });

    const future = await new SignJWT({ sid: SID })
      .setProtectedHeader({ alg: "HS256", kid: ring.current.kid })
      .setSubject(UID)
      .setIssuer("https://login.example.com")
      .setIssuedAt(Math.floor(clock.now / 1000) + 3600)
      .setExpirationTime(Math.floor(clock.now / 1000) + 7200)
      .sign(ring.current.token);
    expect(await service.verify(future)).toEqual({ ok: false, reason: "invalid" });
  });

  it("verifies tokens of a previous secret after rotation, but issues with the new one", async () => {
    const old = tokens("old-secret-1234567890-".repeat(2));
    const token = await old.service.issue(UID, SID);
    const rotated = tokens("new-secret-1234567890-".repeat(2), ["old-secret-1234567890-".repeat(2)], old.clock).service;
    expect((await rotated.verify(token)).ok).toBe(true);
    const issued = await rotated.issue(UID, SID);
    const kid = JSON.parse(Buffer.from(issued.split(".")[0]!, "base64url").toString()).kid;
    expect(kid).toBe(rotated.jwks().keys[0]!.kid);
    // both keys are published, the current one first
    expect(rotated.jwks().keys.map((k) => k.kid)).toEqual([kid, old.service.jwks().keys[0]!.kid]);
    const fresh = tokens("new-secret-1234567890-".repeat(2), [], old.clock).service;
    expect((await fresh.verify(token)).ok).toBe(false);
  });
});
