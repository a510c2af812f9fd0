import { describe, expect, it } from "vitest";
import { clientKey } from "#app/lib/abuse/client-key.server.ts";
import { mailboxOf, normaliseEmail, safeRedirect } from "../../app/lib/validation.server";

describe("addresses: normalised before they are compared, ASCII local parts only", () => {
  it("refuses a KELVIN SIGN (U+212A) instead of lower-casing it into another account's `k`", () => {
    const result = normaliseEmail("\u212Aelvin@example.com");
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.message).toContain("before the @");
  });

  it.each([["jos\u00e9@example.com"], ["\uff41da@example.com"], ["\u0430da@example.com"]])(
    "refuses the non-ASCII local part %j with a clear message",
    (input) => {
      const result = normaliseEmail(input);
      expect(result).toMatchObject({ ok: false });
      if (!result.ok) expect(result.message).toMatch(/A–Z before the @/);
    },
  );

  it.each([
    ["ada@b\u00fccher.example", "ada@xn--bcher-kva.example"],
    ["ada@B\u00dcCHER.example", "ada@xn--bcher-kva.example"],
    ["ada@\uff45xample.com", "ada@example.com"],
    ["Kelvin@EXAMPLE.com", "kelvin@example.com"],
  ])("turns the domain of %j into its ASCII (punycode) form: %j", (input, expected) => {
    expect(normaliseEmail(input)).toEqual({ ok: true, email: expected });
  });

  it("counts `local+tag@` as `local@`, and leaves other addresses alone", () => {
    expect(mailboxOf("plus+1@example.com")).toBe("plus@example.com");
    expect(mailboxOf("plus+a+b@example.com")).toBe("plus@example.com");
    expect(mailboxOf("plus@example.com")).toBe("plus@example.com");
    expect(mailboxOf("+only@example.com")).toBe("+only@example.com");
  });
});

describe("redirect targets: always a single-slash path on this site", () => {
  const app = { appUrl: new URL("https://login.example.com"), forwardAuthHosts: [] };
  it.each(["/.//evil.example", "/%2e//evil.example", "/a/..//evil.example", "/./%2e//evil.example", "/..//evil"])(
    "drops %j, which dot-segment resolution would turn into //evil",
    (target) => {
      expect(safeRedirect(target, app)).toBe("/account");
    },
  );
  it("keeps ordinary paths", () => {
    expect(safeRedirect("/a/../account?x=1", app)).toBe("/account?x=1");
    expect(safeRedirect("/docs/./page", app)).toBe("/docs/page");
  });
});

describe("per-client limits group IPv6 clients by /64", () => {
  it.each([
    ["2001:db8:1:2::1", "2001:db8:1:2::/64"],
    ["2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"],
    ["2001:0DB8:0001:0002:0:0:0:9", "2001:db8:1:2::/64"],
    ["2001:db8::1", "2001:db8:0:0::/64"],
    ["::1", "0:0:0:0::/64"],
    ["::ffff:203.0.113.7", "203.0.113.7"],
    ["203.0.113.7", "203.0.113.7"],
  ])("%s → %s", (ip, key) => {
    expect(clientKey(ip)).toBe(key);
  });
  it("keeps different /64s apart", () => {
    expect(clientKey("2001:db8:1:2::1")).not.toBe(clientKey("2001:db8:1:3::1"));
  });
});
