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
  const app = { appUrl: new URL("https://login.example.com"), forwardAuthHosts: [] };

  it.each(["/account", "/account?tab=sessions", "/a/b#c", "/x%20y"])("keeps the same-site path %j", (target) => {
    expect(safeRedirect(target, app)).toBe(
      new URL(target, app.appUrl).pathname + new URL(target, app.appUrl).search + new URL(target, app.appUrl).hash,
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

describe("redirect targets after forward auth: FORWARD_AUTH_HOSTS", () => {
  const rules = {
    appUrl: new URL("https://login.example.com"),
    forwardAuthHosts: ["grafana.example.com", "*.apps.example.com", "wiki.example.com:8443"],
  };

  it.each([
    ["https://grafana.example.com/d/abc?orgId=1#panel", "https://grafana.example.com/d/abc?orgId=1#panel"],
    ["https://grafana.example.com:9000/", "https://grafana.example.com:9000/"],
    ["https://a.apps.example.com/x", "https://a.apps.example.com/x"],
    ["https://b.a.apps.example.com/", "https://b.a.apps.example.com/"],
    ["https://wiki.example.com:8443/page", "https://wiki.example.com:8443/page"],
    ["HTTPS://Grafana.Example.COM/x", "https://grafana.example.com/x"],
    // this site, written absolutely: kept as its path
    ["https://login.example.com/account?tab=1", "/account?tab=1"],
  ])("keeps %j", (target, kept) => {
    expect(safeRedirect(target, rules)).toBe(kept);
  });

  it.each([
    "https://evil.example/",
    "https://grafana.example.com.evil.example/",
    "https://evilgrafana.example.com/",
    "https://apps.example.com/", // the wildcard's own domain is not one of its subdomains
    "https://wiki.example.com/", // only on the listed port
    "https://wiki.example.com:9443/",
    "http://grafana.example.com/", // plain http while APP_URL is https
    "https://user:pass@grafana.example.com/",
    "https://grafana.example.com\\@evil.example/",
    "javascript://grafana.example.com/%0aalert(1)",
    "ftp://grafana.example.com/",
    "https://grafana.example.com/\u0000",
    "https://login.example.com//evil.example",
  ])("refuses %j", (target) => {
    expect(safeRedirect(target, rules)).toBe("/account");
  });

  it("allows http apps only beside an http APP_URL (local mode)", () => {
    const local = { appUrl: new URL("http://127.0.0.1:3000"), forwardAuthHosts: ["127.0.0.1:8080"] };
    expect(safeRedirect("http://127.0.0.1:8080/private?a=1&b=2", local)).toBe("http://127.0.0.1:8080/private?a=1&b=2");
    expect(safeRedirect("http://127.0.0.1:8081/private", local)).toBe("/account");
    expect(safeRedirect("http://127.0.0.1:3000/account", local)).toBe("/account");
  });
});
