/**
 * Email templates: an HTML and a text file per email, from the app's defaults (app/emails/) or an
 * operator's folder (EMAIL_TEMPLATES_DIR), optionally per language (`sign-in.de.html`). The syntax
 * is deliberately tiny: `{{name}}` inserts a value (HTML-escaped in .html files) and
 * `{{#name}}…{{/name}}` keeps its content only when the value is not empty. Checked once at start.
 */
import { LOCALES, type Locale } from "#app/lib/i18n/locales.ts";

export const EMAILS = {
  "sign-in": {
    /** every value a sign-in email template may use */
    values: [
      "appName",
      "logoUrl",
      "accentColor",
      "onAccent",
      "email",
      "link",
      "code",
      "minutes",
      "greeting",
      "intro",
      "linkIntro",
      "button",
      "codeIntro",
      "once",
      "ignore",
    ],
    /** what a template must show, or the email is useless */
    required: ["link", "code"],
  },
} as const;

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
    if (!parts || !email || !(email in EMAILS)) {
      problems.push(
        `${where}/${file}: not a template this app sends (expected ${Object.keys(EMAILS)
          .map((n) => `${n}.html, ${n}.txt`)
          .join(", ")}, or those with a language such as ${Object.keys(EMAILS)[0]}.de.html)`,
      );
      continue;
    }
    if (parts[2] && !LOCALES.includes(parts[2])) {
      problems.push(`${where}/${file}: "${parts[2]}" is not a language of this app (${LOCALES.join(", ")})`);
    }
    const spec = EMAILS[email as EmailName];
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
