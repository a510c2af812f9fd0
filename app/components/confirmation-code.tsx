/**
 * The field for the 6-digit code that confirms an account change (a new address, a deletion):
 * the digits keyboard and the OS's one-time-code autofill, emptied and focused after a wrong code.
 * Unlike the sign-in code it does not send itself at six digits: a change is confirmed by a press.
 */
import { useEffect, useRef } from "react";
import type { Said } from "#app/lib/i18n/intl.ts";

/** the refusals that are about the typed code itself */
const ABOUT_THE_CODE = new Set<string>(["lifecycle.error.wrongCode"]);

export function ConfirmationCode({ id, refused, describedBy }: { id: string; refused?: Said; describedBy?: string }) {
  const field = useRef<HTMLInputElement>(null);
  useEffect(() => {
    if (!refused || !ABOUT_THE_CODE.has(refused.id) || !field.current) return;
    field.current.value = "";
    field.current.focus();
  }, [refused]);
  return (
    <input
      ref={field}
      id={id}
      name="code"
      type="text"
      inputMode="numeric"
      autoComplete="one-time-code"
      maxLength={12}
      required
      className="code-input"
      aria-describedby={describedBy}
    />
  );
}
