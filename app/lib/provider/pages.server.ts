/**
 * The pages the OpenID provider shows people (consent, the device code, sign-out, errors), in the
 * app's own layout and stylesheet so they look like /login. Plain HTML with no script: the app's
 * Content-Security-Policy holds for them unchanged. Every value is escaped.
 */
import styles from "../../styles.css?url";

const escape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function layout(title: string, body: string): string {
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escape(title)} · PwdlessGs</title><link rel="stylesheet" href="${escape(styles)}"><link rel="icon" href="/favicon.svg" type="image/svg+xml"></head><body><header class="top"><a href="/" class="brand">PwdlessGs</a><nav><a href="/account">Account</a></nav></header><main>${body}</main></body></html>`;
}

/** What each scope lets an app do, in the words the consent page uses. */
const SCOPE_WORDS: Record<string, string> = {
  openid: "Know who you are (your PwdlessGs user id)",
  email: "See your email address",
  profile: "See your profile (your email address as your user name)",
  offline_access: "Stay signed in while you are away (it can refresh its access without asking you)",
};

export function scopeWords(scope: string): string {
  return SCOPE_WORDS[scope] ?? scope;
}

export function consentPage(input: { uid: string; client: string; email: string; scopes: string[] }): string {
  const items = input.scopes.map((s) => `<li>${escape(scopeWords(s))}</li>`).join("");
  const action = `/oidc/interaction/${encodeURIComponent(input.uid)}/consent`;
  return layout(
    `Allow ${input.client}?`,
    `<div class="card"><h1>Allow ${escape(input.client)} to use your account?</h1>
<p class="muted">You are signed in as <strong>${escape(input.email)}</strong>.</p>
<p><strong>${escape(input.client)}</strong> asks to:</p><ul data-testid="consent-scopes">${items}</ul>
<form method="post" action="${action}" class="row"><button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny" class="secondary">Deny</button></form>
<p class="muted">You can take this back at any time on your account page, under "Apps with access".</p></div>`,
  );
}

export function deviceCodePage(input: { action: string; xsrf: string; error?: string; userCode?: string }): string {
  const error = input.error ? `<p id="code-error" class="error" role="alert">${escape(input.error)}</p>` : "";
  return layout(
    "Sign in on a device",
    `<div class="card"><h1>Sign in on a device</h1>
<p class="muted">Type the code your device (a command line, a TV) shows you.</p>
<form method="post" action="${escape(input.action)}" novalidate>
<input type="hidden" name="xsrf" value="${escape(input.xsrf)}">
<label for="user_code">Code from your device</label>
<input id="user_code" name="user_code" type="text" autocomplete="off" autocapitalize="characters" spellcheck="false" required value="${escape(input.userCode ?? "")}"${input.error ? ' aria-invalid="true" aria-describedby="code-error"' : ""}>
${error}<div class="row"><button type="submit">Continue</button></div></form></div>`,
  );
}

export function deviceConfirmPage(input: { action: string; xsrf: string; client: string; userCode: string }): string {
  const hidden = `<input type="hidden" name="xsrf" value="${escape(input.xsrf)}"><input type="hidden" name="user_code" value="${escape(input.userCode)}">`;
  return layout(
    `Sign in to ${input.client}?`,
    `<div class="card"><h1>Sign in to ${escape(input.client)} on your device?</h1>
<p>Check that your device shows this code:</p><p class="mono" data-testid="device-user-code"><strong>${escape(input.userCode)}</strong></p>
<p class="muted">If you did not start this sign-in, or the code differs, cancel: someone may be trying to get into your account.</p>
<form method="post" action="${escape(input.action)}" class="row">${hidden}<button type="submit" name="confirm" value="yes">Continue</button>
<button type="submit" name="abort" value="yes" class="secondary">Cancel</button></form></div>`,
  );
}

export function deviceDonePage(client: string): string {
  return layout(
    "Device signed in",
    `<div class="card"><h1>Your device is signed in</h1><p>${escape(client)} can go on now; you can close this page.</p>
<p><a href="/account">Your account</a></p></div>`,
  );
}

export function logoutPage(input: { action: string; xsrf: string; client: string | undefined }): string {
  const who = input.client ? `${escape(input.client)} asked to sign you out.` : "An app asked to sign you out.";
  return layout(
    "Sign out?",
    `<div class="card"><h1>Sign out of PwdlessGs?</h1><p>${who}</p>
<form method="post" action="${escape(input.action)}" class="row"><input type="hidden" name="xsrf" value="${escape(input.xsrf)}">
<button type="submit" name="logout" value="yes">Sign out</button>
<button type="submit" class="secondary">Stay signed in</button></form>
<p class="muted">Signing out ends your PwdlessGs session on this device and the apps' access that came with it.</p></div>`,
  );
}

/** A request the provider cannot go on with: what happened, and what to do next (never a redirect to an unchecked URI). */
export function problemPage(input: { title: string; message: string; detail?: string }): string {
  const detail = input.detail ? `<p class="muted">Details: <code>${escape(input.detail)}</code></p>` : "";
  return layout(
    input.title,
    `<div class="card"><h1>${escape(input.title)}</h1><p>${escape(input.message)}</p>${detail}
<p><a href="/account">Your account</a> · <a href="/login">Sign in</a></p></div>`,
  );
}
