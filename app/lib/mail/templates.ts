/**
 * Email templates: an HTML and a text file per email (sign-in, the account emails, the invitation),
 * from the app's defaults (app/emails/) or an operator's folder (EMAIL_TEMPLATES_DIR), optionally
 * per language (`sign-in.de.html`). The syntax is deliberately tiny: `{{name}}` inserts a value
 * (HTML-escaped in .html files) and `{{#name}}…{{/name}}` keeps its content only when the value is
 * not empty. Checked once at start.
 */
import { LOCALES, type Locale } from "#app/lib/i18n/locales.ts";

/** what every template may use: the brand, the recipient, the greeting */
const COMMON = ["appName", "logoUrl", "accentColor", "onAccent", "email", "greeting"] as const;

/**
 * Every email this app sends: the values its templates may use (the translated sentences among
 * them) and what a template must show, or the email is useless. Notices have nothing required: an
 * operator's own words may replace every sentence.
 */
export const EMAILS = {
  /** the sign-in link and code */
  "sign-in": {
    values: [...COMMON, "link", "code", "minutes", "intro", "linkIntro", "button", "codeIntro", "once", "ignore"],
    required: ["link", "code"],
  },
  /** to the new address of an address change: its link and code */
  "change-address": {
    values: [
      ...COMMON,
      "oldEmail",
      "link",
      "code",
      "minutes",
      "intro",
      "linkIntro",
      "button",
      "codeIntro",
      "once",
      "ignore",
    ],
    required: ["link", "code"],
  },
  /** to the old address, once the change is done */
  "address-changed": { values: [...COMMON, "newEmail", "intro", "warning"], required: [] },
  /** the code that confirms deleting an account */
  "delete-code": { values: [...COMMON, "code", "minutes", "intro", "codeIntro", "ignore"], required: ["code"] },
  "account-deleted": { values: [...COMMON, "intro", "warning"], required: [] },
  "passkey-added": { values: [...COMMON, "passkeyName", "intro", "warning"], required: [] },
  "passkey-removed": { values: [...COMMON, "passkeyName", "intro", "warning"], required: [] },
  /** an administrator's invitation (POST /api/admin/invites) */
  invitation: { values: [...COMMON, "link", "intro", "linkIntro", "button", "ignore"], required: ["link"] },
} as const satisfies Record<string, { values: readonly string[]; required: readonly string[] }>;

export type EmailName = keyof typeof EMAILS;
export type TemplateFormat = "html" | "txt";
/** file name (`sign-in.html`, `sign-in.de.txt`) → its text */
export type TemplateFiles = Record<string, string>;

const TOKEN = /\{\{\s*([#/]?)\s*([A-Za-z][A-Za-z0-9]*)\s*\}\}/g;
const FILE = /^([a-z-]+)(?:\.([a-z]{2,3}))?\.(html|txt)$/;

/** Every problem of a folder's templates, one line each (empty: usable). `name` is the folder, for the lines. */
export function checkTemplates(files: TemplateFiles, where: string): string[] {
  const problems: string[] = [];
  for (const [file, text] of Object.entries(files)) {
    const parts = FILE.exec(file);
    const email = parts?.[1];
    if (!parts || !email || !Object.hasOwn(EMAILS, email)) {
      problems.push(
        `${where}/${file}: not a template this app sends (expected <email>.html or <email>.txt, optionally ` +
          `with a language such as sign-in.de.html, for one of: ${Object.keys(EMAILS).join(", ")})`,
      );
      continue;
    }
    if (parts[2] && !LOCALES.includes(parts[2])) {
      problems.push(`${where}/${file}: "${parts[2]}" is not a language of this app (${LOCALES.join(", ")})`);
    }
    const spec: { values: readonly string[]; required: readonly string[] } = EMAILS[email as EmailName];
    const allowed = new Set<string>(spec.values);
    const used = new Set<string>();
    const open: string[] = [];
    for (const match of text.matchAll(TOKEN)) {
      const [, kind, name] = match;
      if (!name) continue;
      if (!allowed.has(name)) {
        problems.push(`${where}/${file}: unknown value {{${kind}${name}}} (known: ${spec.values.join(", ")})`);
        continue;
      }
      if (kind === "#") open.push(name);
      else if (kind === "/") {
        if (open.pop() !== name) problems.push(`${where}/${file}: {{/${name}}} closes a section that is not open`);
      } else used.add(name);
    }
    for (const name of open) problems.push(`${where}/${file}: section {{#${name}}} is never closed with {{/${name}}}`);
    for (const name of spec.required) {
      if (!used.has(name)) problems.push(`${where}/${file}: must show {{${name}}}`);
    }
  }
  return problems;
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

/** Fill a checked template: values escaped for HTML in .html files, sections kept when their value is set. */
export function render(template: string, format: TemplateFormat, values: Record<string, string>): string {
  const withSections = template.replace(
    /\{\{\s*#\s*([A-Za-z][A-Za-z0-9]*)\s*\}\}([\s\S]*?)\{\{\s*\/\s*\1\s*\}\}/g,
    (_, name: string, body: string) => (values[name] ? body : ""),
  );
  return withSections.replace(TOKEN, (_, kind: string, name: string) => {
    if (kind) return "";
    const value = values[name] ?? "";
    return format === "html" ? escapeHtml(value) : value;
  });
}

/** The template for an email in a language: the folder's per-language file, its plain file, then the default's. */
export function pick(
  files: TemplateFiles,
  defaults: TemplateFiles,
  email: EmailName,
  format: TemplateFormat,
  locale: Locale,
): string {
  return (
    files[`${email}.${locale}.${format}`] ??
    files[`${email}.${format}`] ??
    defaults[`${email}.${locale}.${format}`] ??
    defaults[`${email}.${format}`] ??
    ""
  );
}
