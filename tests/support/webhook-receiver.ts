/** A real HTTP webhook receiver that checks every signature with the Standard Webhooks algorithm, written here independently of the server's. */
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type Server } from "node:http";

export interface ReceivedEvent {
  id: string;
  type: string;
  data: Record<string, unknown>;
  timestamp: number;
  /** when it arrived here (ms), and when the event happened by its body's `timestamp` (ms) */
  receivedAt: number;
  happenedAt: number;
}

export class WebhookReceiver {
  readonly events: ReceivedEvent[] = [];
  /** deliveries whose signature did not verify (must stay empty) */
  readonly badSignatures: string[] = [];
  /** answer 503 to everything while true: a receiver that is down */
  down = false;
  private server: Server | undefined;
  port = 0;

  constructor(readonly secret: string) {}

  async start(): Promise<this> {
    const key = Buffer.from(this.secret.replace(/^whsec_/, ""), "base64");
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        if (this.down) return res.writeHead(503).end();
        const body = Buffer.concat(chunks).toString("utf8");
        const id = String(req.headers["webhook-id"] ?? "");
        const ts = String(req.headers["webhook-timestamp"] ?? "");
        const header = String(req.headers["webhook-signature"] ?? "");
        const expected = createHmac("sha256", key).update(`${id}.${ts}.${body}`).digest();
        const ok = header.split(" ").some((sig) => {
          const [version, value] = sig.split(",");
          const given = Buffer.from(value ?? "", "base64");
          return version === "v1" && given.length === expected.length && timingSafeEqual(given, expected);
        });
        const fresh = Math.abs(Date.now() / 1000 - Number(ts)) < 5 * 60;
        if (!ok || !fresh) {
          this.badSignatures.push(id);
          return res.writeHead(400).end();
        }
        const parsed = JSON.parse(body) as { type: string; timestamp: string; data: Record<string, unknown> };
        this.events.push({
          id,
          type: parsed.type,
          data: parsed.data,
          timestamp: Number(ts),
          receivedAt: Date.now(),
          happenedAt: Date.parse(parsed.timestamp),
        });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", () => resolve()));
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/hooks`;
  }

  of(type: string): ReceivedEvent[] {
    return this.events.filter((e) => e.type === type);
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}

export function webhookSecret(): string {
  return `whsec_${Buffer.from(Array.from({ length: 32 }, () => Math.floor(Math.random() * 256))).toString("base64")}`;
}
