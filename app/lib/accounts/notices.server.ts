/** The account emails other than sign-in: confirmations (address change, deletion, invitation) and notices of what changed. */
import type { MailMessage } from "#app/lib/ops/mail.server.ts";

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

/** A plain mail: paragraphs of text, the same words in the HTML part. */
function message(
  to: string,
  subject: string,
  paragraphs: string[],
  link?: { href: string; label: string },
): MailMessage {
  const text = [...paragraphs, ...(link ? [link.href] : [])].join("\n\n");
  const html = `<!doctype html><html><body style="font-family:system-ui,sans-serif;line-height:1.5">
${paragraphs.map((p) => `<p>${escapeHtml(p).replace(/\n/g, "<br>")}</p>`).join("\n")}
${link ? `<p><a href="${escapeHtml(link.href)}">${escapeHtml(link.label)}</a></p>` : ""}
</body></html>`;
  return { to, subject, text, html };
}

export function confirmAddressMessage(
  to: string,
  from: string,
  link: string,
  code: string,
  site: string,
  minutes: number,
) {
  return message(
    to,
    `Confirm your new address for ${site}`,
    [
      `Hello,`,
      `Someone signed in to ${site} as ${from} asked to use this address (${to}) for that account instead.`,
      `Open the link below to confirm, or type this code on the account page. Both work once, for ${minutes} minutes:`,
      `    ${code}`,
      `If you did not ask for it, ignore this email: nothing changes without the link or the code.`,
    ],
    { href: link, label: "Use this address" },
  );
}

export function addressChangedMessage(to: string, now: string, site: string) {
  return message(to, `Your address for ${site} was changed`, [
    `Hello,`,
    `The account at ${site} that used this address (${to}) now uses ${now}. This address can no longer sign in to it.`,
    `If you did not do this, someone may have access to your account: contact the site's administrators.`,
  ]);
}

export function deleteCodeMessage(to: string, code: string, site: string, minutes: number) {
  return message(to, `Confirm deleting your account at ${site}`, [
    `Hello,`,
    `Someone signed in to ${site} as ${to} asked to delete this account and everything kept about it.`,
    `To confirm, type this code on the account page within ${minutes} minutes:`,
    `    ${code}`,
    `If you did not ask for it, ignore this email: the account stays.`,
  ]);
}

export function accountDeletedMessage(to: string, site: string) {
  return message(to, `Your account at ${site} was deleted`, [
    `Hello,`,
    `The account at ${site} for ${to} has been deleted, with its sessions and passkeys. Signing in with this address again would create a new, empty account.`,
    `If you did not do this, contact the site's administrators.`,
  ]);
}

export function passkeyNoticeMessage(to: string, change: "added" | "removed", name: string, site: string) {
  return message(to, `A passkey was ${change} on your account at ${site}`, [
    `Hello,`,
    change === "added"
      ? `A passkey named "${name}" was added to your account at ${site}. It can now sign in as ${to}.`
      : `The passkey named "${name}" was removed from your account at ${site}. It can no longer sign in.`,
    `If you did not do this, sign in, check the passkeys on your account page, and sign out everywhere.`,
  ]);
}

export function inviteMessage(to: string, link: string, site: string) {
  return message(
    to,
    `You are invited to ${site}`,
    [`Hello,`, `You are invited to create an account at ${site} with this address (${to}). Sign in with it to begin:`],
    { href: link, label: `Sign in to ${site}` },
  );
}
