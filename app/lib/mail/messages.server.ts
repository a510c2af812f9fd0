/**
 * The emails this app sends, in the language of the request that asked for them, with the
 * operator's name, logo and colour, from the templates (EMAIL_TEMPLATES_DIR, else app/emails/).
 * Anything that sends mail later (not during the request) must carry the locale it was asked in.
 */
import type { MailMessage } from "#app/lib/ops/mail.server.ts";
import { brandColors, DEFAULT_ACCENT, type Brand } from "#app/lib/brand.ts";
import { translator } from "#app/lib/i18n/intl.ts";
import type { Locale } from "#app/lib/i18n/locales.ts";
import { pick, render, type TemplateFiles } from "./templates";
import signInHtml from "../../emails/sign-in.html?raw";
import signInText from "../../emails/sign-in.txt?raw";

/** The shipped templates: the example to copy into EMAIL_TEMPLATES_DIR. */
export const DEFAULT_TEMPLATES: TemplateFiles = { "sign-in.html": signInHtml, "sign-in.txt": signInText };

export interface EmailsOptions {
  brand: Brand;
  /** the operator's templates (EMAIL_TEMPLATES_DIR), checked at start; missing ones fall back to the defaults */
  templates: TemplateFiles;
  linkTtlMinutes: number;
}

export class Emails {
  private readonly colors: ReturnType<typeof brandColors>;

  constructor(private readonly options: EmailsOptions) {
    this.colors = brandColors(options.brand.accentColor ?? DEFAULT_ACCENT);
  }

  /** The sign-in email: its subject carries the code, so a phone's notification shows it. */
  signIn(to: string, link: string, code: string, locale: Locale): MailMessage {
    const t = translator(locale);
    const { brand, linkTtlMinutes: minutes } = this.options;
    const appName = brand.name;
    const values: Record<string, string> = {
      appName,
      logoUrl: brand.logoUrl ?? "",
      accentColor: this.colors.accent,
      onAccent: this.colors.onAccent,
      email: to,
      link,
      code,
      minutes: String(minutes),
      greeting: t("mail.greeting"),
      intro: t("mail.intro", { appName, email: to }),
      linkIntro: t("mail.linkIntro", { minutes }),
      button: t("mail.button", { appName }),
      codeIntro: t("mail.codeIntro"),
      once: t("mail.once"),
      ignore: t("mail.ignore"),
    };
    const template = (format: "html" | "txt") =>
      pick(this.options.templates, DEFAULT_TEMPLATES, "sign-in", format, locale);
    return {
      to,
      subject: t("mail.subject", { code, appName }),
      text: render(template("txt"), "txt", values),
      html: render(template("html"), "html", values),
    };
  }
}
