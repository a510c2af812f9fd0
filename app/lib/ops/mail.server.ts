import { randomBytes } from "node:crypto";
import nodemailer from "nodemailer";
import { z } from "zod";
import type { Table } from "#cluster";
import type { Logger } from "#app/lib/context.server.ts";
import type { ClusterPort } from "#app/lib/context.server.ts";

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  html: string;
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

const sentSchema = z.object({
  to: z.string().max(254),
  subject: z.string().max(500),
  text: z.string().max(20_000),
  html: z.string().max(50_000),
  sentAt: z.string().max(40),
  sentBy: z.string().max(128),
});
export type OutboxMessage = z.infer<typeof sentSchema>;

/**
 * Local mode without SMTP: messages are kept for /dev/mailbox in a replicated table, so every
 * local node's mailbox shows the mail of the whole cluster; the link is logged too.
 */
export class Outbox implements Mailer {
  static readonly LIMIT_PER_NODE = 200;
  private readonly table: Table<OutboxMessage>;
  private readonly mine: string[] = [];

  constructor(
    cluster: ClusterPort,
    private readonly log: Logger,
  ) {
    this.table = cluster.store.table("outbox", { schema: sentSchema });
    this.nodeId = cluster.nodeId;
    this.table.onChange(() => (this.serialised = undefined));
  }

  /** `/dev/mailbox.json`'s body, kept until the outbox changes: polling it serialises nothing new */
  private serialised: string | undefined;

  private readonly nodeId: string;

  async send(message: MailMessage): Promise<void> {
    const key = `${Date.now().toString(36)}-${randomBytes(6).toString("hex")}`;
    this.table.set(key, { ...message, sentAt: new Date().toISOString(), sentBy: this.nodeId });
    this.mine.push(key);
    while (this.mine.length > Outbox.LIMIT_PER_NODE) this.table.delete(this.mine.shift()!);
    this.log.info("mail kept in the outbox (no SMTP_URL); open /dev/mailbox", {
      to: message.to,
      subject: message.subject,
      link: message.text.match(/https?:\/\/\S+/)?.[0],
    });
  }

  /** Erasure: the mails to this address leave the outbox on every node. */
  forget(to: string): void {
    for (const [key, m] of [...this.table.scan()]) if (m.to === to) this.table.delete(key);
  }

  /** Newest first, from every node of the cluster. */
  list(): OutboxMessage[] {
    return [...this.table.scan()].map(([, m]) => m).sort((a, b) => b.sentAt.localeCompare(a.sentAt));
  }

  /** `{"messages": [...]}` newest first; for one address only when `to` is given. */
  json(to?: string): string {
    const shown = (messages: OutboxMessage[]) =>
      JSON.stringify({
        messages: messages.map(({ to, subject, text, html, sentAt }) => ({ to, subject, text, html, sentAt })),
      });
    if (to !== undefined) return shown(this.list().filter((m) => m.to === to));
    return (this.serialised ??= shown(this.list()));
  }
}
