import { parse, TYPE, type MessageFormatElement } from "@formatjs/icu-messageformat-parser";
import { describe, expect, it } from "vitest";
import { brandColors, brandCss, contrast, normaliseHexColor } from "#app/lib/brand.ts";
import { CATALOGS, ENGLISH } from "#app/lib/i18n/catalogs.ts";
import { translator } from "#app/lib/i18n/intl.ts";
import { fromAcceptLanguage, localeOf, LOCALES } from "#app/lib/i18n/locales.ts";
import { checkTemplates, EMAILS, render } from "#app/lib/mail/templates.ts";
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

describe("the account emails and the invitation", () => {
  const emails = new Emails({
    brand: { name: "Acme", logoUrl: "https://cdn.example.com/logo.svg", accentColor: "#e0115f" },
    templates: {},
    linkTtlMinutes: 15,
  });
  /** every email this app sends besides sign-in, as `write(locale)` */
  const every = {
    "change-address": (l: string) =>
      emails.changeAddress("new@example.com", "old@example.com", "https://login.example/c?t=1&u=2", "123456", l),
    "address-changed": (l: string) => emails.addressChanged("old@example.com", "new@example.com", l),
    "delete-code": (l: string) => emails.deleteCode("ada@example.com", "654321", l),
    "account-deleted": (l: string) => emails.accountDeleted("ada@example.com", l),
    "passkey-added": (l: string) => emails.passkeyChanged("ada@example.com", "added", "Ada's <key>", l),
    "passkey-removed": (l: string) => emails.passkeyChanged("ada@example.com", "removed", "Ada's <key>", l),
    invitation: (l: string) => emails.invitation("guest@example.com", "https://login.example/login?email=g", l),
  };

  it("come from the shipped templates, in the asked language, with the brand, every value filled", () => {
    expect(Object.keys(every).sort()).toEqual(
      Object.keys(EMAILS)
        .filter((n) => n !== "sign-in")
        .sort(),
    );
    for (const [name, write] of Object.entries(every)) {
      const [en, de] = [write("en"), write("de")];
      expect(en.subject, name).toContain("Acme");
      expect(de.subject, name).not.toBe(en.subject);
      expect(de.text, name).toMatch(/^Hallo,\n/);
      for (const mail of [en, de]) {
        expect(mail.text, name).not.toMatch(/\{\{|\}\}/);
        expect(mail.html, name).not.toMatch(/\{\{|\}\}/);
        expect(mail.html, name).toContain('<img src="https://cdn.example.com/logo.svg" alt="Acme"');
        expect(mail.text, name).toMatch(/\n-- \nAcme\n$/);
      }
    }
    const change = every["change-address"]("de");
    expect(change.subject).toBe("Bestätigen Sie Ihre neue Adresse für Acme");
    expect(change.text).toContain("als old@example.com angemeldet ist");
    expect(change.text).toContain("15 Minuten lang");
    expect(change.text).toContain("\n    123456\n");
    // the link's button in the brand's colour, its URL escaped in the HTML
    expect(change.html).toContain('href="https://login.example/c?t=1&amp;u=2" style="display:inline-block');
    expect(change.html).toContain("background:#e0115f");
    expect(every["delete-code"]("en").text).toContain("within 15 minutes:\n\n    654321\n");
    // a passkey's name is the person's own text: escaped in HTML, as typed in the text part
    const added = every["passkey-added"]("en");
    expect(added.subject).toBe("A passkey was added to your account at Acme");
    expect(added.text).toContain('A passkey named "Ada\'s <key>" was added');
    expect(added.html).toContain("Ada&#39;s &lt;key&gt;");
    expect(added.html).not.toContain("<key>");
    expect(every["passkey-removed"]("de").text).toContain("Der Passkey namens „Ada's <key>“ wurde");
    expect(every.invitation("de").subject).toBe("Sie sind zu Acme eingeladen");
    expect(every["account-deleted"]("en").subject).toBe("Your account at Acme was deleted");
    expect(every["address-changed"]("de").text).toContain("verwendet jetzt new@example.com");
  });

  it("use an operator's template for one email and language, and the shipped ones for the rest", () => {
    const own = new Emails({
      brand: { name: "Acme", logoUrl: undefined, accentColor: undefined },
      templates: { "invitation.de.txt": "Willkommen! {{link}}", "address-changed.txt": "Moved to {{newEmail}}." },
      linkTtlMinutes: 15,
    });
    expect(own.invitation("g@example.com", "https://x/login", "de").text).toBe("Willkommen! https://x/login");
    expect(own.invitation("g@example.com", "https://x/login", "en").text).toContain("You are invited to create");
    expect(own.addressChanged("o@example.com", "n@example.com", "de").text).toBe("Moved to n@example.com.");
    expect(own.addressChanged("o@example.com", "n@example.com", "de").html).toContain("verwendet jetzt");
  });

  it("have their templates checked like sign-in's: values each email knows, and what it must show", () => {
    expect(
      checkTemplates(
        {
          "change-address.html": "<a href='{{link}}'>{{button}}</a>",
          "delete-code.txt": "{{code}} {{link}}",
          "invitation.de.txt": "{{intro}}",
          "passkey-added.txt": "{{passkeyName}} {{#logoUrl}}{{logoUrl}}{{/logoUrl}}",
          "constructor.html": "{{link}}",
        },
        "dir",
      ),
    ).toEqual([
      "dir/change-address.html: must show {{code}}",
      expect.stringMatching(/^dir\/delete-code\.txt: unknown value \{\{link\}\} \(known: .*minutes/),
      "dir/invitation.de.txt: must show {{link}}",
      expect.stringMatching(/^dir\/constructor\.html: not a template this app sends/),
    ]);
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
