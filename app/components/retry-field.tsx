/** After a refused code: its field emptied and focused, ready for the next try (as on "Check your email"). */
import { useEffect, type RefObject } from "react";
import type { Said } from "#app/lib/i18n/intl.ts";

/** the refusals that are about the typed code itself */
const ABOUT_THE_CODE = new Set<string>(["lifecycle.error.wrongCode"]);

export function useRetryField(field: RefObject<HTMLInputElement>, refused: Said | undefined): void {
  useEffect(() => {
    if (!refused || !ABOUT_THE_CODE.has(refused.id) || !field.current) return;
    field.current.value = "";
    field.current.focus();
  }, [field, refused]);
}
