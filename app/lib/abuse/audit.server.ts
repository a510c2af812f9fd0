import { createHmac } from "node:crypto";
import type { Logger } from "#app/lib/context.server.ts";

export type AuditEvent =
  | "link-sent"
  | "sign-in"
  | "sign-out"
  | "refused"
  | "rate-limited"
  | "session-ended"
  | "code-shown"
  | "passkey-added"
  | "passkey-removed"
  | "refresh-reuse"
  | "email-changed"
  | "account-erased"
  | "data-exported"
  | "admin-act"
  | "admin-refused"
  /** an app got access through the OpenID provider (consent given, or a first-party app's first sign-in) */
  | "app-authorized"
  /** the person took an app's access back on /account */
  | "app-access-revoked";

export interface AuditFields {
  uid?: string;
  email?: string;
  ip?: string;
  reason?: string;
  [extra: string]: unknown;
}

/**
 * The audit trail: one JSON log line per security event, with the user id or a keyed hash of the
 * email (never the address itself), the client's IP and the node. Never a token, cookie or link.
 */
export class Audit {
  constructor(
    private readonly log: Logger,
    private readonly hashKey: string,
    private readonly nodeId: string,
  ) {}

  /** A keyed hash of a normalised address: stable across nodes, useless without the secret. */
  hashEmail(email: string): string {
    return this.keyedHash(email);
  }

  /** The same keyed hash for other personal data kept in replicated rows (a client's network). */
  keyedHash(value: string): string {
    return createHmac("sha256", this.hashKey).update(value).digest("base64url").slice(0, 22);
  }

  record(event: AuditEvent, { email, ...fields }: AuditFields): void {
    this.log.info(event, {
      audit: true,
      event,
      ...fields,
      ...(email ? { emailHash: this.hashEmail(email) } : {}),
      node: this.nodeId,
    });
  }
}
