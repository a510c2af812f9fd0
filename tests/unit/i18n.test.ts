import { parse, TYPE, type MessageFormatElement } from "@formatjs/icu-messageformat-parser";
import { describe, expect, it } from "vitest";
import { brandColors, brandCss, contrast, normaliseHexColor } from "#app/lib/brand.ts";
import { CATALOGS, ENGLISH } from "#app/lib/i18n/catalogs.ts";
import { translator } from "#app/lib/i18n/intl.ts";
import { fromAcceptLanguage, localeOf, LOCALES } from "#app/lib/i18n/locales.ts";
import { checkTemplates, render } from "#app/lib/mail/templates.ts";
import { DEFAULT_TEMPLATES, Emails } from "#app/lib/mail/messages.server.ts";

/** The argument names a message uses, so two languages can be compared. */
function argumentsOf(elements: MessageFormatElement[], into = new Set<string>()): Set<string> {
  for (const element of elements) {
    if (element.type === TYPE.argument || element.type === TYPE.number || element.type === TYPE.date)
      into.add(element.value);
    if (element.type === TYPE.plural || element.type === TYPE.select) {
      into.add(element.value);
      for (const option of Object.values(element.options)) argumentsOf(option.value, into);
    }
  }
  return into;
}

describe("message catalogs", () => {
  it("ship English and German, each with every English key, valid ICU and the same arguments", () => {
    expect(LOCALES).toEqual(["en", "de"]);
    for (const [locale, messages] of Object.entries(CATALOGS)) {
      expect(Object.keys(messages).sort(), locale).toEqual(Object.keys(ENGLISH).sort());
      for (const [id, text] of Object.entries(messages)) {
        const english = [...argumentsOf(parse(ENGLISH[id]!))].sort();
        expect([...argumentsOf(parse(text))].sort(), `${locale} ${id}`).toEqual(english);
      }
    }
  });

  it("says German plurals right", () => {
    const de = translator("de");
    expect(de("code.wrong", { left: 1 })).toContain("Sie haben noch 1 Versuch,");
    expect(de("code.wrong", { left: 4 })).toContain("Sie haben noch 4 Versuche,");
    expect(de("mail.linkIntro", { minutes: 1 })).toContain("1 Minute lang");
    expect(de("mail.linkIntro", { minutes: 15 })).toContain("15 Minuten lang");
    const en = translator("en");
    expect(en("login.error.rateLimited", { minutes: 1 })).toContain("wait 1 minute and");
    expect(en("cluster.rowCount", { count: 1 })).toBe("1 row");
  });
});

describe("choosing a request's language", () => {
  const request = (headers: Record<string, string>) => ({ headers: new Headers(headers) });

  it("takes the cookie first, then Accept-Language by q value, then English", () => {
    expect(fromAcceptLanguage("fr-CH, fr;q=0.9, de;q=0.8, en;q=0.7")).toBe("de");
    expect(fromAcceptLanguage("en;q=0.2, de-AT")).toBe("de");
    expect(fromAcceptLanguage("de;q=0, en")).toBe("en");
    expect(fromAcceptLanguage("*")).toBeUndefined();
    expect(localeOf(request({ "Accept-Language": "de" }))).toBe("de");
    expect(localeOf(request({ "Accept-Language": "de", Cookie: "a=1; pwdless_locale=en" }))).toBe("en");
    expect(localeOf(request({ Cookie: "pwdless_locale=xx" }))).toBe("en");
    expect(localeOf(request({ "Accept-Language": "x".repeat(5000) }))).toBe("en");
  });
});

describe("email templates", () => {
  it("ship defaults that pass their own check, and render them escaped in HTML", () => {
    expect(checkTemplates(DEFAULT_TEMPLATES, "app/emails")).toEqual([]);
    const html = render("<a href='{{link}}'>{{email}}</a>{{#logoUrl}}<img>{{/logoUrl}}", "html", {
      link: "https://x/?a=1&b=2",
      email: "<ada>@example.com",
      logoUrl: "",
    });
    expect(html).toBe("<a href='https://x/?a=1&amp;b=2'>&lt;ada&gt;@example.com</a>");
    expect(render("{{email}}", "txt", { email: "<ada>" })).toBe("<ada>");
  });

  it("write the sign-in email with the code in the subject, in the asked language", () => {
    const emails = new Emails({
      brand: { name: "Acme", logoUrl: undefined, accentColor: "#ffcc00" },
      templates: {},
      linkTtlMinutes: 1,
    });
    const mail = emails.signIn("ada@example.com", "https://login.example/x", "042424", "de");
    expect(mail.subject).toBe("042424 ist Ihr Anmeldecode für Acme");
    expect(mail.text).toContain("1 Minute lang");
    expect(mail.text).toContain("\n    042424\n");
    // a light accent gets dark text on its button
    expect(mail.html).toContain("background:#ffcc00;color:#111111");
    expect(mail.html).not.toContain("<img");
  });
});

describe("brand colours", () => {
  it("keep text readable on any accent, in light and dark mode", () => {
    expect(normaliseHexColor("#25D")).toBe("#2255dd");
    expect(normaliseHexColor("red")).toBeUndefined();
    for (const accent of ["#ffcc00", "#808080", "#000000", "#ffffff", "#e0115f", "#2d5bd7"]) {
      const c = brandColors(accent);
      expect(contrast(c.onAccent, accent), accent).toBeGreaterThanOrEqual(4.5);
      expect(contrast(c.linkLight, "#ffffff"), accent).toBeGreaterThanOrEqual(4.5);
      expect(contrast(c.linkDark, "#1b1f27"), accent).toBeGreaterThanOrEqual(4.5);
    }
    expect(brandCss("#e0115f")).toContain("--brand:#e0115f");
  });
});
