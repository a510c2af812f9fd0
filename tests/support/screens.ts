/**
 * The checks a screens walk makes on whatever a page shows (tests/e2e/screens.spec.ts and
 * tests/e2e/provider-screens.spec.ts): nothing wider than the screen, a <title>, no serious or
 * critical axe-core violation, and on a German page no English words left from the catalogs.
 */
import AxeBuilder from "@axe-core/playwright";
import { parse, TYPE, type MessageFormatElement } from "@formatjs/icu-messageformat-parser";
import { readFileSync } from "node:fs";
import path from "node:path";
import type { Browser, BrowserContext, Page } from "@playwright/test";
import { createIntl } from "react-intl";
import { ROOT } from "./node";

export interface Screen {
  name: string;
  width: number;
  locale: "en" | "de";
  colorScheme: "light" | "dark";
}

/** The shipped catalogs (app/locales/), read as files: Playwright's loader does not import JSON modules. */
const CATALOGS: Record<Screen["locale"], Record<string, string>> = {
  en: JSON.parse(readFileSync(path.join(ROOT, "app/locales/en.json"), "utf8")) as Record<string, string>,
  de: JSON.parse(readFileSync(path.join(ROOT, "app/locales/de.json"), "utf8")) as Record<string, string>,
};
const ENGLISH = CATALOGS.en;

/** A message in a language, as the app formats it (FormatJS): what a step expects to read. */
export function translator(locale: Screen["locale"]): (id: string, values?: Record<string, string | number>) => string {
  const intl = createIntl({ locale, defaultLocale: "en", messages: { ...ENGLISH, ...CATALOGS[locale] } });
  return (id, values) => {
    if (!(id in ENGLISH)) throw new Error(`no message ${id} in app/locales/en.json`);
    return intl.formatMessage({ id }, values);
  };
}

/** A browser as a person on this screen has it: its width, language and colour scheme. */
export async function newContext(browser: Browser, screen: Screen): Promise<BrowserContext> {
  return browser.newContext({
    viewport: { width: screen.width, height: 800 },
    locale: screen.locale === "de" ? "de-DE" : "en-US",
    extraHTTPHeaders: { "Accept-Language": screen.locale === "de" ? "de-DE,de;q=0.9" : "en-US,en;q=0.9" },
    colorScheme: screen.colorScheme,
  });
}

/**
 * The three checks, on whatever the page shows now; `state` names it in a failure. axe-core's
 * serious and critical findings fail it, or with `every` its moderate and minor ones too.
 */
export async function check(
  page: Page,
  state: string,
  problems: string[],
  { every = false }: { every?: boolean } = {},
): Promise<void> {
  await page.waitForLoadState("networkidle");
  const { scrollWidth, innerWidth } = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
  }));
  if (scrollWidth > innerWidth) problems.push(`${state}: ${scrollWidth} px wide on a ${innerWidth} px screen`);
  const title = await page.title();
  if (!title) problems.push(`${state}: no <title>`);
  const results = await new AxeBuilder({ page })
    .withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", ...(every ? ["best-practice"] : [])])
    .analyze();
  for (const v of results.violations) {
    if (every || v.impact === "serious" || v.impact === "critical") {
      problems.push(
        `${state}: ${v.impact} ${v.id} (${v.help}) at ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`,
      );
    }
  }
}

/** The literal words of a message (its text around arguments, in every plural or select case). */
function literalsOf(elements: MessageFormatElement[], into: string[] = []): string[] {
  for (const element of elements) {
    if (element.type === TYPE.literal) into.push(element.value);
    if (element.type === TYPE.plural || element.type === TYPE.select) {
      for (const option of Object.values(element.options)) literalsOf(option.value, into);
    }
    if (element.type === TYPE.tag) literalsOf(element.children, into);
  }
  return into;
}

/**
 * Every stretch of English words from the catalog that German says differently: at least two
 * words and eight characters, so a shared word ("Passkey", "Details:") is not taken for English.
 */
const ENGLISH_ONLY: string[] = (() => {
  const german = new Set(
    Object.values(CATALOGS.de)
      .flatMap((text) => literalsOf(parse(text)))
      .map((s) => s.trim()),
  );
  const stretches = new Set<string>();
  for (const [id, text] of Object.entries(ENGLISH)) {
    if (CATALOGS.de[id] === text) continue;
    for (const literal of literalsOf(parse(text))) {
      const stretch = literal.trim().replace(/^[,.;:·–—]\s*/, "");
      if (stretch.length >= 8 && /\S\s+\S/.test(stretch) && !german.has(stretch)) stretches.add(stretch);
    }
  }
  return [...stretches];
})();

/** Common English words that German text does not use: English from outside the catalogs (a library's own text). */
const ENGLISH_WORDS = /\b(the|and|you|your|this|that|with|not|request|please|error|invalid)\b/i;

/** On a German page: what is still English (catalog text, or a sentence from elsewhere), as problems. */
export async function checkGerman(page: Page, state: string, problems: string[]): Promise<void> {
  const lang = await page.locator("html").getAttribute("lang");
  if (lang !== "de") problems.push(`${state}: <html lang="${lang}">, not de`);
  const title = await page.title();
  // what a person reads: the body's visible text, the title, and the names of images and controls
  const text = `${title}\n${await page.locator("body").innerText()}\n${(
    await page
      .locator("[aria-label], img[alt], [title]")
      .evaluateAll((els) =>
        els.map((el) => el.getAttribute("aria-label") ?? el.getAttribute("alt") ?? el.getAttribute("title") ?? ""),
      )
  ).join("\n")}`;
  const left = ENGLISH_ONLY.filter((stretch) => text.includes(stretch));
  if (left.length > 0) problems.push(`${state}: English left: ${left.map((s) => `"${s}"`).join(", ")}`);
  for (const line of text.split("\n")) {
    // an address or a code shown as itself is not a sentence
    const words = line.replace(/\S+@\S+|\S*[_/]\S*/g, " ");
    if (ENGLISH_WORDS.test(words) && !left.some((s) => line.includes(s))) {
      problems.push(`${state}: English left: "${line.trim()}"`);
    }
  }
}
