/**
 * The message catalogs, one JSON file per language in app/locales/, read once when the module
 * loads (bundled by Vite): nothing is loaded per request. English is the reference: its keys
 * are the message ids, and a key missing from another catalog falls back to English.
 */
import en from "../../locales/en.json";

export type Messages = Record<string, string>;
export type MessageId = keyof typeof en;

const files = import.meta.glob<Messages>("../../locales/*.json", { eager: true, import: "default" });

export const CATALOGS: Record<string, Messages> = Object.fromEntries(
  Object.entries(files).map(([file, messages]) => [file.replace(/^.*\/([^/]+)\.json$/, "$1"), messages]),
);

export const ENGLISH: Messages = en;
