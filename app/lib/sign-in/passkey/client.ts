/** Browser side of passkeys: ask our server for options, run the WebAuthn ceremony, send the answer back. */
import {
  browserSupportsWebAuthn,
  browserSupportsWebAuthnAutofill,
  startAuthentication,
  startRegistration,
} from "@simplewebauthn/browser";
import type { MessageId } from "#app/lib/i18n/intl.ts";

/** A passkey failure said in plain words: the page shows `id` in its language, with a way forward. */
export class PasskeyProblem extends Error {
  constructor(readonly id: MessageId) {
    super(id);
  }
}

/** The browser's WebAuthn errors (with their spec URLs) and our server's refusals, as one of our messages. */
function problemOf(error: unknown, fallback: MessageId): PasskeyProblem {
  if (error instanceof PasskeyProblem) return error;
  const name = error instanceof Error ? error.name : "";
  const code = (error as { code?: unknown } | null)?.code;
  // closing the prompt, or letting it time out, is a NotAllowedError; simplewebauthn keeps the name
  if (name === "AbortError" || code === "ERROR_CEREMONY_ABORTED") return new PasskeyProblem("passkey.cancelled");
  if (name === "NotAllowedError") return new PasskeyProblem("passkey.cancelled");
  if (name === "InvalidStateError" || code === "ERROR_AUTHENTICATOR_PREVIOUSLY_REGISTERED")
    return new PasskeyProblem("passkey.exists");
  if (name === "NotSupportedError" || name === "SecurityError") return new PasskeyProblem("passkey.unsupported");
  if (name === "TimeoutError") return new PasskeyProblem("passkey.timeout");
  return new PasskeyProblem(fallback);
}

async function post<T>(path: string, body: unknown): Promise<T> {
  const response = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
  });
  const data = (await response.json().catch(() => ({}))) as T & { problem?: string };
  if (response.status === 401) throw new PasskeyProblem("passkey.sessionEnded");
  if (data.problem === "unknown-credential") throw new PasskeyProblem("passkey.notFound");
  if (!response.ok) throw new Error(`the server answered ${response.status}`);
  return data;
}

/**
 * Sign in with a passkey; resolves with where to go. `autofill` waits for the person to pick a
 * passkey in the address field's suggestions (conditional mediation) instead of opening a dialog.
 * Fails with a PasskeyProblem.
 */
export async function signInWithPasskey(redirectTo: string, autofill = false): Promise<string> {
  if (!autofill && !browserSupportsWebAuthn()) throw new PasskeyProblem("passkey.unsupported");
  try {
    const { options, state } = await post<{
      options: Parameters<typeof startAuthentication>[0]["optionsJSON"];
      state: string;
    }>("/auth/passkey", { step: "options" });
    const response = await startAuthentication({ optionsJSON: options, useBrowserAutofill: autofill });
    const done = await post<{ redirectTo: string }>("/auth/passkey", { step: "verify", state, response, redirectTo });
    return done.redirectTo;
  } catch (error) {
    throw problemOf(error, "passkey.failed");
  }
}

export async function autofillAvailable(): Promise<boolean> {
  return browserSupportsWebAuthnAutofill().catch(() => false);
}

/** Add a passkey to the signed-in account. Fails with a PasskeyProblem. */
export async function addPasskey(name: string): Promise<void> {
  if (!browserSupportsWebAuthn()) throw new PasskeyProblem("passkey.unsupported");
  try {
    const { options, state } = await post<{
      options: Parameters<typeof startRegistration>[0]["optionsJSON"];
      state: string;
    }>("/account/passkeys", { step: "options" });
    const response = await startRegistration({ optionsJSON: options });
    await post("/account/passkeys", { step: "add", state, response, name });
  } catch (error) {
    throw problemOf(error, "passkey.addFailed");
  }
}

/**
 * Delete the signed-in account, confirmed with one of its passkeys; resolves with where to go.
 * Fails with a PasskeyProblem whose way on is trying again or the emailed code (nothing was deleted).
 */
export async function deleteAccountWithPasskey(): Promise<string> {
  if (!browserSupportsWebAuthn()) throw new PasskeyProblem("passkey.deleteUnsupported");
  try {
    const { options, state } = await post<{
      options: Parameters<typeof startAuthentication>[0]["optionsJSON"];
      state: string;
    }>("/account/delete/passkey", { step: "options" });
    const response = await startAuthentication({ optionsJSON: options });
    const done = await post<{ redirectTo: string }>("/account/delete/passkey", { step: "delete", state, response });
    return done.redirectTo;
  } catch (error) {
    const problem = problemOf(error, "passkey.deleteFailed");
    if (problem.id === "passkey.sessionEnded") throw new PasskeyProblem("account.sessionEnded");
    if (problem.id === "passkey.cancelled" || problem.id === "passkey.timeout")
      throw new PasskeyProblem("passkey.deleteCancelled");
    if (problem.id === "passkey.unsupported") throw new PasskeyProblem("passkey.deleteUnsupported");
    throw new PasskeyProblem("passkey.deleteFailed");
  }
}
