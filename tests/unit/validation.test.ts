import { describe, expect, it } from "vitest";
import { normaliseEmail, safeRedirect } from "../../app/lib/validation.server";

describe("email normalisation", () => {
  it.each([
    ["  Ada@Example.COM ", "ada@example.com"],
    ["first.last+tag@sub.example.org", "first.last+tag@sub.example.org"],
    ["X@Y.IO", "x@y.io"],
  ])("accepts %j as %j", (input, expected) => {
    expect(normaliseEmail(input)).toEqual({ ok: true, email: expected });
  });

  it.each([
    ["", "empty"],
    ["plainaddress", "no @"],
    ["a@b", "no dot in the domain"],
    ["a@b.c\r\nBcc: x@y.z", "CRLF header injection"],
    ["a@b.com\nSubject: x", "LF header injection"],
    ["a b@c.com", "space"],
    [`${"a".repeat(290)}@example.com`, "300 characters"],
    [`${"a".repeat(65)}@example.com`, "local part over 64"],
    [".a@b.com", "leading dot"],
    ["a..b@c.com", "double dot"],
    ["a@-b.com", "label starting with a dash"],
    ["<script>@x.com", "markup"],
    ["a@b.123", "numeric top-level domain"],
  ])("refuses %j (%s)", (input) => {
    const result = normaliseEmail(input);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.message.length).toBeGreaterThan(0);
  });

  it("refuses non-strings", () => {
    expect(normaliseEmail(null).ok).toBe(false);
    expect(normaliseEmail(42).ok).toBe(false);
  });
});

describe("redirect targets", () => {
  const app = new URL("https://login.example.com");

  it.each(["/account", "/account?tab=sessions", "/a/b#c", "/x%20y"])("keeps the same-site path %j", (target) => {
    expect(safeRedirect(target, app)).toBe(
      new URL(target, app).pathname + new URL(target, app).search + new URL(target, app).hash,
    );
  });

  it.each([
    "//evil.example",
    "//evil.example/path",
    "/\\evil.example",
    "\\\\evil.example",
    "https://evil.example",
    "https:evil.example",
    "http://login.example.com.evil.example/",
    "javascript:alert(1)",
    "%2F%2Fevil.example",
    "/%2F/evil.example".replace("/%2F/", "/%2F%2F"),
    "/%5Cevil.example",
    "evil.example",
    "/\t/evil.example",
    "",
    "/" + "a".repeat(3000),
  ])("falls back for %j", (target) => {
    expect(safeRedirect(target, app)).toBe("/account");
  });

  it("uses the given fallback", () => {
    expect(safeRedirect(undefined, app, "/")).toBe("/");
  });
});
