import { describe, expect, it, vi } from "vitest";
import { SESSION_COOKIE, SessionCookieJar } from "#app/lib/session/session-cookie.server.ts";
import { deriveKeyRing } from "../../server/keys";

const value = {
  uid: "0b6f4f4e-3d2a-4c8e-9a51-2f5c6d7e8f90",
  sid: "1c7a5b5f-4e3b-4d9f-8b62-3a6d7e8f9a01",
  iat: 1_700_000_000_000,
  gen: 3,
};
const settings = { secure: true, maxAgeSeconds: 30 * 24 * 3600 };

function requestWith(setCookie: string): Request {
  return new Request("https://login.example.com/", { headers: { Cookie: setCookie.split(";")[0]! } });
}

describe("session cookie", () => {
  const jar = new SessionCookieJar(deriveKeyRing("a".repeat(40), []), settings);

  it("seals {uid, sid} into an HttpOnly, SameSite=Lax, Secure cookie that opens again", async () => {
    const header = await jar.write(value);
    expect(header.startsWith(`${SESSION_COOKIE}=`)).toBe(true);
    expect(header).toMatch(/HttpOnly/);
    expect(header).toMatch(/SameSite=Lax/);
    expect(header).toMatch(/Secure/);
    expect(header).not.toContain(value.uid);
    expect(await jar.read(requestWith(header))).toEqual(value);
  });

  it("refuses a changed, truncated or foreign cookie", async () => {
    const header = await jar.write(value);
    const sealed = header.split(";")[0]!.slice(SESSION_COOKIE.length + 1);
    const i = Math.floor(sealed.length / 2);
    const changed = `${sealed.slice(0, i)}${sealed[i] === "a" ? "b" : "a"}${sealed.slice(i + 1)}`;
    expect(await jar.read(requestWith(`${SESSION_COOKIE}=${changed}`))).toBeNull();
    expect(await jar.read(requestWith(`${SESSION_COOKIE}=${sealed.slice(0, -4)}`))).toBeNull();
    const other = new SessionCookieJar(deriveKeyRing("b".repeat(40), []), settings);
    expect(await other.read(requestWith(header))).toBeNull();
    expect(await jar.read(new Request("https://x/"))).toBeNull();
  });

  it("opens cookies of a previous secret and seals with the current one", async () => {
    const old = new SessionCookieJar(deriveKeyRing("old".repeat(14), []), settings);
    const rotated = new SessionCookieJar(deriveKeyRing("new".repeat(14), ["old".repeat(14)]), settings);
    const header = await old.write(value);
    expect(await rotated.read(requestWith(header))).toEqual(value);
    const resealed = await rotated.write(value);
    expect(await old.read(requestWith(resealed))).toBeNull();
  });

  it("clears with Max-Age=0", () => {
    expect(jar.clear()).toMatch(/Max-Age=0/);
  });
});

describe("session cookie with COOKIE_DOMAIN", () => {
  const shared = new SessionCookieJar(deriveKeyRing("a".repeat(40), []), { ...settings, domain: "example.com" });
  const hostOnly = new SessionCookieJar(deriveKeyRing("a".repeat(40), []), settings);

  it("reaches the domain's hosts, and is cleared with the same Domain (or the browser keeps it)", async () => {
    expect(await shared.write(value)).toMatch(/; Domain=example\.com(;|$)/);
    expect(shared.clear()).toMatch(/; Domain=example\.com(;|$)/);
    expect(shared.clear()).toMatch(/Max-Age=0/);
  });

  it("stays host-only when unset", async () => {
    expect(await hostOnly.write(value)).not.toMatch(/Domain=/i);
    expect(hostOnly.clear()).not.toMatch(/Domain=/i);
  });
});

describe("opened cookies remembered by their bytes", () => {
  it("open again without unsealing, but never past their seal's expiry", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      vi.setSystemTime(new Date("2026-12-01T12:00:00Z"));
      const short = new SessionCookieJar(deriveKeyRing("a".repeat(40), []), { secure: true, maxAgeSeconds: 60 });
      const header = await short.write(value);
      expect(await short.read(requestWith(header))).toEqual(value);
      expect(await short.read(requestWith(header))).toEqual(value);
      vi.setSystemTime(new Date("2026-12-01T12:03:00Z"));
      expect(await short.read(requestWith(header))).toBeNull();
    } finally {
      vi.useRealTimers();
    }
  });
});
