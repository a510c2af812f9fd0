/** Browser side of passkeys: ask our server for options, run the WebAuthn ceremony, send the answer back. */
import { browserSupportsWebAuthnAutofill, startAuthentication, startRegistration } from "@simplewebauthn/browser";

async function post<T>(path: string, body: unknown): Promise<T> {
  const response = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const data = (await response.json().catch(() => ({}))) as T & { message?: string };
  if (!response.ok) throw new Error(data.message ?? `The server answered ${response.status}.`);
  return data;
}

/**
 * Sign in with a passkey; resolves with where to go. `autofill` waits for the person to pick a
 * passkey in the address field's suggestions (conditional mediation) instead of opening a dialog.
 */
export async function signInWithPasskey(redirectTo: string, autofill = false): Promise<string> {
  const { options, state } = await post<{
    options: Parameters<typeof startAuthentication>[0]["optionsJSON"];
    state: string;
  }>("/auth/passkey", { step: "options" });
  const response = await startAuthentication({ optionsJSON: options, useBrowserAutofill: autofill });
  const done = await post<{ redirectTo: string }>("/auth/passkey", { step: "verify", state, response, redirectTo });
  return done.redirectTo;
}

export async function autofillAvailable(): Promise<boolean> {
  return browserSupportsWebAuthnAutofill().catch(() => false);
}

export async function addPasskey(name: string): Promise<void> {
  const { options, state } = await post<{
    options: Parameters<typeof startRegistration>[0]["optionsJSON"];
    state: string;
  }>("/account/passkeys", { step: "options" });
  const response = await startRegistration({ optionsJSON: options });
  await post("/account/passkeys", { step: "add", state, response, name });
}

/** Delete the signed-in account, confirmed with one of its passkeys; resolves with where to go. */
export async function deleteAccountWithPasskey(): Promise<string> {
  const { options, state } = await post<{
    options: Parameters<typeof startAuthentication>[0]["optionsJSON"];
    state: string;
  }>("/account/delete/passkey", { step: "options" });
  const response = await startAuthentication({ optionsJSON: options });
  const done = await post<{ redirectTo: string }>("/account/delete/passkey", { step: "delete", state, response });
  return done.redirectTo;
}
