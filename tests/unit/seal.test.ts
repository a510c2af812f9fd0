import { hkdfSync, webcrypto } from "node:crypto";
import { sealData as ironSessionSeal, unsealData as ironSessionUnseal } from "iron-session";
import { defaults, seal as ironSeal, unseal as ironUnseal } from "iron-webcrypto";
import { afterEach, describe, expect, it, vi } from "vitest";
import { sealData, unsealData } from "#app/lib/session/seal.server.ts";

const A = "a".repeat(32) + "-first-secret";
const B = "b".repeat(32) + "-second-secret";

afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

describe("iron seals with pre-derived keys", () => {
  it("round-trips data in iron-session's format, with no per-seal salt", async () => {
    const sealed = await sealData({ uid: "u", n: 1 }, { password: { 7: A }, ttl: 60 });
    expect(sealed).toMatch(/^Fe26\.2\*7\*\*[^*]+\*[^*]+\*\d+\*\*[^*]+~2$/);
    expect(await unsealData(sealed, { password: { 7: A }, ttl: 60 })).toEqual({ uid: "u", n: 1 });
  });

  it("derives no key per call: PBKDF2 never runs for new seals", async () => {
    const derive = vi.spyOn(webcrypto.subtle, "deriveBits");
    for (let i = 0; i < 5; i++) {
      const sealed = await sealData({ i }, { password: { 1: A }, ttl: 60 });
      expect(await unsealData(sealed, { password: { 1: A }, ttl: 60 })).toEqual({ i });
    }
    expect(derive).not.toHaveBeenCalled();
  });

  it("is iron's own format and crypto: WebCrypto opens our seals and makes seals we open, given the keys", async () => {
    const key = (info: string) => new Uint8Array(hkdfSync("sha256", A, "pwdless-gs/iron-seal/v1", info, 32));
    const keys = { encryption: key("encryption"), integrity: key("integrity") };
    const ours = await sealData({ from: "node:crypto" }, { password: { 3: A }, ttl: 60 });
    const crypto = webcrypto as unknown as Parameters<typeof ironUnseal>[0];
    expect(await ironUnseal(crypto, ours.replace(/~2$/, ""), { 3: keys }, defaults)).toEqual({ from: "node:crypto" });
    const theirs = await ironSeal(crypto, { from: "webcrypto" }, { id: "3", ...keys }, { ...defaults, ttl: 60_000 });
    expect(await unsealData(`${theirs}~2`, { password: { 3: A }, ttl: 60 })).toEqual({ from: "webcrypto" });
  });

  it("still opens seals iron-session made with PBKDF2 (cookies issued before the change)", async () => {
    const old = await ironSessionSeal({ legacy: true }, { password: { 1: A }, ttl: 60 });
    expect(await unsealData(old, { password: { 1: A }, ttl: 60 })).toEqual({ legacy: true });
  });

  it("a tampered seal opens as {}", async () => {
    const sealed = await sealData({ uid: "u" }, { password: { 1: A }, ttl: 60 });
    const parts = sealed.split("*");
    parts[4] = parts[4]!.slice(0, -2) + (parts[4]!.endsWith("AA") ? "BB" : "AA");
    expect(await unsealData(parts.join("*"), { password: { 1: A }, ttl: 60 })).toEqual({});
  });

  it("opens with a rotated (previous) password by id, and refuses an unknown key", async () => {
    const sealedWithA = await sealData({ v: "a" }, { password: { 1: A }, ttl: 60 });
    expect(await unsealData(sealedWithA, { password: { 1: A, 2: B }, ttl: 60 })).toEqual({ v: "a" });
    // the newest id seals
    const sealedWithB = await sealData({ v: "b" }, { password: { 1: A, 2: B }, ttl: 60 });
    expect(sealedWithB.split("*")[1]).toBe("2");
    expect(await unsealData(sealedWithB, { password: { 1: A }, ttl: 60 })).toEqual({});
    // same id, another secret: the MAC fails
    expect(await unsealData(sealedWithA, { password: { 1: B }, ttl: 60 })).toEqual({});
  });

  it("an expired seal opens as {}", async () => {
    const sealed = await sealData({ v: 1 }, { password: { 1: A }, ttl: 1 });
    vi.useFakeTimers({ now: Date.now() + 5 * 60_000, toFake: ["Date"] });
    expect(await unsealData(sealed, { password: { 1: A }, ttl: 1 })).toEqual({});
  });

  it("iron-session's own unsealData refuses our seals' keys (a different key per purpose)", async () => {
    const sealed = await sealData({ v: 1 }, { password: { 1: A }, ttl: 60 });
    // iron-session would use the password string itself: the MAC does not match, nothing opens
    expect(await ironSessionUnseal(sealed, { password: { 1: A }, ttl: 60 })).toEqual({});
  });
});
