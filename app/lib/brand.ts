/**
 * The operator's brand (APP_NAME, APP_LOGO_URL, APP_ACCENT_COLOR) as a stylesheet served from this
 * site (`/brand.css`), so the strict `style-src 'self'` policy stays as it is. Colours for text and
 * links are derived from the accent so they keep WCAG AA contrast in light and dark mode.
 */
export interface Brand {
  name: string;
  logoUrl: string | undefined;
  /** `#rrggbb` */
  accentColor: string | undefined;
}

export const DEFAULT_ACCENT = "#2d5bd7";
const LIGHT_BG = "#ffffff";
const DARK_BG = "#1b1f27";

/** `#rgb` or `#rrggbb` → `#rrggbb`, or undefined when it is neither. */
export function normaliseHexColor(value: string): string | undefined {
  const text = value.trim().toLowerCase();
  if (/^#[0-9a-f]{6}$/.test(text)) return text;
  if (/^#[0-9a-f]{3}$/.test(text)) return `#${[...text.slice(1)].map((c) => c + c).join("")}`;
  return undefined;
}

function channels(hex: string): [number, number, number] {
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)) as [number, number, number];
}

function luminance(hex: string): number {
  const [r, g, b] = channels(hex).map((v) => {
    const c = v / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
}

export function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi! + 0.05) / (lo! + 0.05);
}

function mix(hex: string, toward: string, amount: number): string {
  const from = channels(hex);
  const to = channels(toward);
  return `#${from
    .map((v, i) =>
      Math.round(v + (to[i]! - v) * amount)
        .toString(16)
        .padStart(2, "0"),
    )
    .join("")}`;
}

/** The accent moved toward black or white just enough to read as text on `background` (4.5:1). */
function readableOn(accent: string, background: string): string {
  const toward = luminance(background) > 0.5 ? "#000000" : "#ffffff";
  for (let step = 0; step <= 20; step++) {
    const candidate = mix(accent, toward, step / 20);
    if (contrast(candidate, background) >= 4.5) return candidate;
  }
  return toward;
}

/** The colours the stylesheet sets: button background and text, link colour in light and dark mode. */
export function brandColors(accent: string) {
  return {
    accent,
    // white or black on the accent, whichever reads better: one of them always reaches 4.5:1
    onAccent: contrast("#ffffff", accent) >= contrast("#111111", accent) ? "#ffffff" : "#111111",
    linkLight: readableOn(accent, LIGHT_BG),
    linkDark: readableOn(accent, DARK_BG),
  };
}

/** A short stable hash, so the stylesheet's URL changes when the colour does (long caching). */
function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0).toString(36);
}

export function brandCss(accent: string): string {
  const c = brandColors(accent);
  return [
    `:root{--brand:${c.accent};--on-brand:${c.onAccent};--link:${c.linkLight}}`,
    `@media (prefers-color-scheme: dark){:root{--link:${c.linkDark}}}`,
    "",
  ].join("\n");
}

/** The stylesheet for an accent colour, or none (the built-in colours apply). */
export function brandStylesheet(brand: Brand): { href: string; css: string } | undefined {
  if (!brand.accentColor) return undefined;
  const css = brandCss(brand.accentColor);
  return { href: `/brand.css?v=${fnv1a(css)}`, css };
}
