/**
 * The emails this app sends, in the language of the request that asked for them, with the
 * operator's name, logo and colour, from the templates (EMAIL_TEMPLATES_DIR, else app/emails/).
 * Anything that sends mail later (not during the request) must carry the locale it was asked in.
 */
import type { MailMessage } from "#app/lib/ops/mail.server.ts";
import { brandColors, DEFAULT_ACCENT, type Brand } from "#app/lib/brand.ts";
import { translator, type Translate } from "#app/lib/i18n/intl.ts";
import type { Locale } from "#app/lib/i18n/locales.ts";
import { EMAILS, pick, render, type EmailName, type TemplateFiles } from "./templates";
import signInHtml from "../../emails/sign-in.html?raw";
import signInText from "../../emails/sign-in.txt?raw";
import changeAddressHtml from "../../emails/change-address.html?raw";
import changeAddressText from "../../emails/change-address.txt?raw";
import addressChangedHtml from "../../emails/address-changed.html?raw";
import addressChangedText from "../../emails/address-changed.txt?raw";
import deleteCodeHtml from "../../emails/delete-code.html?raw";
import deleteCodeText from "../../emails/delete-code.txt?raw";
import accountDeletedHtml from "../../emails/account-deleted.html?raw";
import accountDeletedText from "../../emails/account-deleted.txt?raw";
import passkeyAddedHtml from "../../emails/passkey-added.html?raw";
import passkeyAddedText from "../../emails/passkey-added.txt?raw";
import passkeyRemovedHtml from "../../emails/passkey-removed.html?raw";
import passkeyRemovedText from "../../emails/passkey-removed.txt?raw";
import invitationHtml from "../../emails/invitation.html?raw";
import invitationText from "../../emails/invitation.txt?raw";

/** The shipped templates: the example to copy into EMAIL_TEMPLATES_DIR. */
export const DEFAULT_TEMPLATES: TemplateFiles = {
  "sign-in.html": signInHtml,
  "sign-in.txt": signInText,
  "change-address.html": changeAddressHtml,
  "change-address.txt": changeAddressText,
  "address-changed.html": addressChangedHtml,
  "address-changed.txt": addressChangedText,
  "delete-code.html": deleteCodeHtml,
  "delete-code.txt": deleteCodeText,
  "account-deleted.html": accountDeletedHtml,
  "account-deleted.txt": accountDeletedText,
  "passkey-added.html": passkeyAddedHtml,
  "passkey-added.txt": passkeyAddedText,
  "passkey-removed.html": passkeyRemovedHtml,
  "passkey-removed.txt": passkeyRemovedText,
  "invitation.html": invitationHtml,
  "invitation.txt": invitationText,
};

export interface EmailsOptions {
  brand: Brand;
  /** the operator's templates (EMAIL_TEMPLATES_DIR), checked at start; missing ones fall back to the defaults */
  templates: TemplateFiles;
  /** LINK_TTL_MINUTES: how long a link or code works (sign-in and the account confirmations alike) */
  linkTtlMinutes: number;
}

/** The values of one email (its template's own, past the brand, recipient and greeting every email has). */
type ValuesOf<E extends EmailName> = Record<
  Exclude<
    (typeof EMAILS)[E]["values"][number],
    "appName" | "logoUrl" | "accentColor" | "onAccent" | "email" | "greeting"
  >,
  string
>;

export class Emails {
  private readonly colors: ReturnType<typeof brandColors>;

  constructor(private readonly options: EmailsOptions) {
    this.colors = brandColors(options.brand.accentColor ?? DEFAULT_ACCENT);
  }

  /** The sign-in email: its subject carries the code, so a phone's notification shows it. */
  signIn(to: string, link: string, code: string, locale: Locale): MailMessage {
    return this.write("sign-in", to, locale, (t, appName, minutes) => ({
      subject: t("mail.subject", { code, appName }),
      values: {
        link,
        code,
        minutes: String(minutes),
        intro: t("mail.intro", { appName, email: to }),
        linkIntro: t("mail.linkIntro", { minutes }),
        button: t("mail.button", { appName }),
        codeIntro: t("mail.codeIntro"),
        once: t("mail.once"),
        ignore: t("mail.ignore"),
      },
    }));
  }

  /** To the new address of an address change: a link and a code, either finishes it. */
  changeAddress(to: string, from: string, link: string, code: string, locale: Locale): MailMessage {
    return this.write("change-address", to, locale, (t, appName, minutes) => ({
      subject: t("mail.changeAddress.subject", { appName }),
      values: {
        oldEmail: from,
        link,
        code,
        minutes: String(minutes),
        intro: t("mail.changeAddress.intro", { appName, oldEmail: from, email: to }),
        linkIntro: t("mail.changeAddress.linkIntro", { minutes }),
        button: t("mail.changeAddress.button"),
        codeIntro: t("mail.changeAddress.codeIntro"),
        once: t("mail.changeAddress.once"),
        ignore: t("mail.changeAddress.ignore"),
      },
    }));
  }

  /** To the old address once the change is done: it no longer signs in to the account. */
  addressChanged(to: string, newEmail: string, locale: Locale): MailMessage {
    return this.write("address-changed", to, locale, (t, appName) => ({
      subject: t("mail.addressChanged.subject", { appName }),
      values: {
        newEmail,
        intro: t("mail.addressChanged.intro", { appName, email: to, newEmail }),
        warning: t("mail.addressChanged.warning"),
      },
    }));
  }

  /** The fresh code that confirms deleting the account. */
  deleteCode(to: string, code: string, locale: Locale): MailMessage {
    return this.write("delete-code", to, locale, (t, appName, minutes) => ({
      subject: t("mail.deleteCode.subject", { appName }),
      values: {
        code,
        minutes: String(minutes),
        intro: t("mail.deleteCode.intro", { appName, email: to }),
        codeIntro: t("mail.deleteCode.codeIntro", { minutes }),
        ignore: t("mail.deleteCode.ignore"),
      },
    }));
  }

  accountDeleted(to: string, locale: Locale): MailMessage {
    return this.write("account-deleted", to, locale, (t, appName) => ({
      subject: t("mail.accountDeleted.subject", { appName }),
      values: {
        intro: t("mail.accountDeleted.intro", { appName, email: to }),
        warning: t("mail.accountDeleted.warning"),
      },
    }));
  }

  passkeyChanged(to: string, change: "added" | "removed", name: string, locale: Locale): MailMessage {
    const kind = change === "added" ? "passkey-added" : "passkey-removed";
    return this.write(kind, to, locale, (t, appName) => ({
      subject: t(change === "added" ? "mail.passkeyAdded.subject" : "mail.passkeyRemoved.subject", { appName }),
      values: {
        passkeyName: name,
        intro: t(change === "added" ? "mail.passkeyAdded.intro" : "mail.passkeyRemoved.intro", {
          appName,
          email: to,
          name,
        }),
        warning: t("mail.passkey.warning"),
      },
    }));
  }

  /** An administrator's invitation: this address may create an account (by signing in at `link`). */
  invitation(to: string, link: string, locale: Locale): MailMessage {
    return this.write("invitation", to, locale, (t, appName) => ({
      subject: t("mail.invitation.subject", { appName }),
      values: {
        link,
        intro: t("mail.invitation.intro", { appName, email: to }),
        linkIntro: t("mail.invitation.linkIntro"),
        button: t("mail.invitation.button", { appName }),
        ignore: t("mail.invitation.ignore"),
      },
    }));
  }

  /** One email: its subject and values in `locale`, the brand's and recipient's values, both templates filled. */
  private write<E extends EmailName>(
    email: E,
    to: string,
    locale: Locale,
    say: (t: Translate, appName: string, minutes: number) => { subject: string; values: ValuesOf<E> },
  ): MailMessage {
    const t = translator(locale);
    const { brand, linkTtlMinutes } = this.options;
    const { subject, values } = say(t, brand.name, linkTtlMinutes);
    const all: Record<string, string> = {
      appName: brand.name,
      logoUrl: brand.logoUrl ?? "",
      accentColor: this.colors.accent,
      onAccent: this.colors.onAccent,
      email: to,
      greeting: t("mail.greeting"),
      ...values,
    };
    const template = (format: "html" | "txt") => pick(this.options.templates, DEFAULT_TEMPLATES, email, format, locale);
    return { to, subject, text: render(template("txt"), "txt", all), html: render(template("html"), "html", all) };
  }
}
