/** A person's name for the device behind a session, from its User-Agent: "Firefox on Android". Runs on both sides. */
import type { Translate } from "#app/lib/i18n/intl.ts";

export interface Device {
  /** a product name, or null when none is recognised */
  browser: string | null;
  os: string | null;
}

const BROWSERS: Array<[RegExp, string]> = [
  [/EdgA?\//, "Edge"],
  [/OPR\/|Opera/, "Opera"],
  [/SamsungBrowser\//, "Samsung Internet"],
  [/Firefox\/|FxiOS\//, "Firefox"],
  [/CriOS\/|Chrom(e|ium)\//, "Chrome"],
  [/Safari\//, "Safari"],
  [/curl\//, "curl"],
  [/python-requests|aiohttp|httpx/i, "Python"],
  [/node-fetch|undici|Node\.js/i, "Node.js"],
];

const SYSTEMS: Array<[RegExp, string]> = [
  [/iPhone/, "iPhone"],
  [/iPad/, "iPad"],
  [/Android/, "Android"],
  [/Windows/, "Windows"],
  [/CrOS/, "ChromeOS"],
  [/Mac OS X|Macintosh/, "macOS"],
  [/Linux/, "Linux"],
];

export function deviceOf(userAgent: string | null | undefined): Device {
  if (!userAgent) return { browser: null, os: null };
  const browser = BROWSERS.find(([pattern]) => pattern.test(userAgent))?.[1] ?? null;
  const os = SYSTEMS.find(([pattern]) => pattern.test(userAgent))?.[1] ?? null;
  return { browser, os };
}

/** The device in the page's language: "Firefox on Android", "Firefox auf Android", "Unknown device". */
export function deviceName(t: Translate, device: Device): string {
  if (!device.browser && !device.os) return t("account.device.unknown");
  if (!device.os) return device.browser!;
  return t("account.device.browserOn", { browser: device.browser ?? t("account.device.browser"), os: device.os });
}

/**
 * A sign-in method in the page's language, from its id and the name the server's list of methods
 * gives it (a provider's own name, such as "GitHub", is not translated).
 */
export function methodName(t: Translate, method: { id: string; name: string }): string {
  if (method.id === "email" || method.id === "code") return t("account.method.email");
  if (method.id === "passkey") return t("account.method.passkey");
  return method.name;
}
