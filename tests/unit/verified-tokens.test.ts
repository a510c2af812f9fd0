import { afterEach, describe, expect, it, vi } from "vitest";
import { AccessTokens } from "#app/lib/session/access-token.server.ts";
import { VerifiedAccessTokens } from "#app/lib/session/verified-tokens.server.ts";
import { deriveKeyRing } from "#server/keys.ts";

const UID = "0b6f4f4e-3d2a-4c8e-9a51-2f5c6d7e8f90";
const SID = "1c7a5b5f-4e3b-4d9f-8b62-3a6d7e8f9a01";
const SECRET = "verified-tokens-secret-".repeat(2);

function service(clock = { now: 1_700_000_000_000 }) {
  return {
    tokens: new VerifiedAccessTokens(
      deriveKeyRing(SECRET, []),
      { issuer: "urn:test", audience: "urn:test:api" },
      900,
      () => clock.now,
    ),
    clock,
  };
}

afterEach(() => vi.restoreAllMocks());

describe("access tokens checked once per token", () => {
  it("checks a token's signature once, then answers from memory with the same claims", async () => {
    const { tokens } = service();
    const token = await tokens.issue(UID, SID);
    const signatureChecks = vi.spyOn(AccessTokens.prototype, "verify");
    const first = await tokens.verify(token);
    const second = await tokens.verify(token);
    expect(first).toMatchObject({ ok: true, claims: { uid: UID, sid: SID } });
    expect(second).toEqual(first);
    expect(signatureChecks).toHaveBeenCalledTimes(1);
  });

  it("a remembered token still expires", async () => {
    const { tokens, clock } = service();
    const token = await tokens.issue(UID, SID);
    expect((await tokens.verify(token)).ok).toBe(true);
    clock.now += 901_000;
    expect(await tokens.verify(token)).toMatchObject({ ok: false, reason: "expired", claims: { sid: SID } });
  });

  it("never remembers a token that failed: a changed token fails every time", async () => {
    const { tokens } = service();
    const token = await tokens.issue(UID, SID);
    const forged = token.slice(0, -3) + (token.endsWith("AAA") ? "BBB" : "AAA");
    const signatureChecks = vi.spyOn(AccessTokens.prototype, "verify");
    expect(await tokens.verify(forged)).toEqual({ ok: false, reason: "invalid" });
    expect(await tokens.verify(forged)).toEqual({ ok: false, reason: "invalid" });
    expect(signatureChecks).toHaveBeenCalledTimes(2);
    expect((await tokens.verify(token)).ok).toBe(true);
  });

  it("a token from another secret is refused even after ours were remembered", async () => {
    const { tokens } = service();
    const other = new AccessTokens(
      deriveKeyRing("another-secret-entirely-".repeat(2), []),
      { issuer: "urn:test", audience: "urn:test:api" },
      900,
      () => 1_700_000_000_000,
    );
    expect((await tokens.verify(await tokens.issue(UID, SID))).ok).toBe(true);
    expect(await tokens.verify(await other.issue(UID, SID))).toEqual({ ok: false, reason: "invalid" });
  });
});
