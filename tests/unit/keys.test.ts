import { describe, expect, it } from "vitest";
import { deriveKeyRing, deriveKeys } from "../../server/keys";

describe("key derivation", () => {
  const secret = "s".repeat(48);

  it("derives a distinct key for every purpose", () => {
    const keys = deriveKeys(secret);
    const values = [
      keys.cookie,
      keys.link,
      keys.linkCookie,
      Buffer.from(keys.token).toString("hex"),
      Buffer.from(keys.cluster).toString("hex"),
    ];
    expect(new Set(values).size).toBe(values.length);
    for (const v of values) expect(v).toMatch(/^[0-9a-f]{64}$/);
  });

  it("is deterministic, so every node with the same secret agrees", () => {
    expect(deriveKeys(secret)).toEqual(deriveKeys(secret));
  });

  it("gives different keys and ids for different secrets", () => {
    const a = deriveKeys(secret);
    const b = deriveKeys(`${secret}x`);
    expect(a.cookie).not.toBe(b.cookie);
    expect(a.kid).not.toBe(b.kid);
    expect(a.sealId).not.toBe(b.sealId);
    expect(a.sealId).toBeGreaterThan(0);
  });

  it("never reveals the secret in a key id", () => {
    const keys = deriveKeys(secret);
    expect(keys.kid).not.toContain("sss");
    expect(keys.kid).toMatch(/^[A-Za-z0-9_-]{11}$/);
  });

  it("keeps previous secrets apart from the current one", () => {
    const ring = deriveKeyRing("new".repeat(12), ["old".repeat(12)]);
    expect(ring.current.kid).toBe(deriveKeys("new".repeat(12)).kid);
    expect(ring.previous.map((k) => k.kid)).toEqual([deriveKeys("old".repeat(12)).kid]);
  });
});
