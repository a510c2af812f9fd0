import nodemailer from "nodemailer";
import type { Logger } from "../../server/log";

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  html: string;
}

export interface SentMessage extends MailMessage {
  sentAt: string;
}

export interface Mailer {
  send(message: MailMessage): Promise<void>;
}

/** Real delivery over SMTP (SMTP_URL). */
export class SmtpMailer implements Mailer {
  private readonly transport: nodemailer.Transporter;

  constructor(
    smtpUrl: string,
    private readonly from: string,
  ) {
    this.transport = nodemailer.createTransport(smtpUrl, {
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 20_000,
    } as nodemailer.TransportOptions);
  }

  async send(message: MailMessage): Promise<void> {
    await this.transport.sendMail({ from: this.from, ...message });
  }
}

/** Local mode without SMTP: messages are kept in memory for /dev/mailbox, and the link is logged. */
export class Outbox implements Mailer {
  private readonly messages: SentMessage[] = [];
  static readonly LIMIT = 200;

  constructor(private readonly log: Logger) {}

  async send(message: MailMessage): Promise<void> {
    this.messages.unshift({ ...message, sentAt: new Date().toISOString() });
    this.messages.length = Math.min(this.messages.length, Outbox.LIMIT);
    this.log.info("mail kept in the outbox (no SMTP_URL); open /dev/mailbox", {
      to: message.to,
      subject: message.subject,
      link: message.text.match(/https?:\/\/\S+/)?.[0],
    });
  }

  /** Newest first. */
  list(): SentMessage[] {
    return [...this.messages];
  }
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

export function magicLinkMessage(to: string, link: string, appUrl: URL, ttlMinutes: number): MailMessage {
  const site = appUrl.host;
  const text = [
    `Hello,`,
    ``,
    `Someone (hopefully you) asked to sign in to ${site} as ${to}.`,
    `Open this link to sign in. It works once, for ${ttlMinutes} minutes, in the browser where you asked for it:`,
    ``,
    link,
    ``,
    `If you did not ask for it, ignore this email: nobody can sign in without the link.`,
  ].join("\n");
  const html = `<!doctype html><html><body style="font-family:system-ui,sans-serif;line-height:1.5">
<p>Hello,</p>
<p>Someone (hopefully you) asked to sign in to <strong>${escapeHtml(site)}</strong> as <strong>${escapeHtml(to)}</strong>.</p>
<p><a href="${escapeHtml(link)}" style="display:inline-block;padding:10px 16px;background:#2d5bd7;color:#fff;border-radius:6px;text-decoration:none">Sign in to ${escapeHtml(site)}</a></p>
<p>The link works once, for ${ttlMinutes} minutes, in the browser where you asked for it.</p>
<p style="color:#666">If you did not ask for it, ignore this email: nobody can sign in without the link.</p>
</body></html>`;
  return { to, subject: `Your sign-in link for ${site}`, text, html };
}
