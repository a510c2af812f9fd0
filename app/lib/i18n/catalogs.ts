/**
 * The message catalogs, one JSON file per language in app/locales/, imported once when the
 * module loads (bundled by Vite; plain imports, so `npm run dev`'s tsx reads them too): nothing
 * is loaded per request. English is the reference: its keys are the message ids, and a key
 * missing from another catalog falls back to English. Adding a language: its file, and one line
 * below.
 */
import de from "../../locales/de.json";
import en from "../../locales/en.json";

export type Messages = Record<string, string>;
export type MessageId = keyof typeof en;

export const CATALOGS: Record<string, Messages> = { en, de };

export const ENGLISH: Messages = en;
