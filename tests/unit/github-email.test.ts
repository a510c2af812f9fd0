import { describe, expect, it } from "vitest";
import { primaryVerifiedEmail } from "#app/lib/sign-in/social/github-email.server.ts";

// rows as GitHub's GET /user/emails returns them
const row = (email: string, primary: boolean, verified: boolean) => ({
  email,
  primary,
  verified,
  visibility: primary ? "private" : null,
});

describe("the address a GitHub account proves", () => {
  it("is the primary address when GitHub has verified it, normalised like every other address", () => {
    const emails = [
      row("old@example.org", false, true),
      row("  Ada@Example.COM ", true, true),
      row("work@example.net", false, false),
    ];
    expect(primaryVerifiedEmail(emails)).toEqual({ ok: true, email: "ada@example.com" });
  });

  it("refuses an unverified primary address, even when a secondary one is verified", () => {
    const emails = [row("secondary@example.org", false, true), row("primary@example.com", true, false)];
    expect(primaryVerifiedEmail(emails)).toEqual({ ok: false, problem: "unverified-email" });
  });

  it("refuses when GitHub shares no address, or none is primary", () => {
    expect(primaryVerifiedEmail([])).toEqual({ ok: false, problem: "no-email" });
    expect(primaryVerifiedEmail([row("a@example.com", false, true)])).toEqual({ ok: false, problem: "no-email" });
  });

  it("treats anything but GitHub's shape as malformed, never as an address", () => {
    expect(primaryVerifiedEmail({ message: "Bad credentials" })).toEqual({ ok: false, problem: "malformed" });
    expect(primaryVerifiedEmail([{ email: "a@example.com", primary: "yes", verified: true }])).toEqual({
      ok: false,
      problem: "malformed",
    });
    expect(primaryVerifiedEmail(null)).toEqual({ ok: false, problem: "malformed" });
    // a "verified" primary that is not an address (header smuggling) is refused too
    expect(primaryVerifiedEmail([row("ada@example.com\r\nBcc: x@example.com", true, true)])).toEqual({
      ok: false,
      problem: "malformed",
    });
  });
});
