/**
 * The webhook receiver of bench:webhooks in its own process: the tests' receiver (a real HTTP server
 * checking every signature with the Standard Webhooks algorithm), driven over IPC by bench/webhooks.ts.
 */
import { WebhookReceiver } from "../tests/support/webhook-receiver";

const send = (m: object) => process.send!(m);

async function main() {
  const receiver = await new WebhookReceiver(process.env.BENCH_WEBHOOK_SECRET!).start();
  send({ event: "started", url: receiver.url });
  process.on("message", async (raw: unknown) => {
    const cmd = (raw as { cmd?: unknown }).cmd;
    if (cmd === "reset") {
      receiver.events.length = 0;
      receiver.badSignatures.length = 0;
      send({ event: "reset" });
    } else if (cmd === "stats") {
      const byType: Record<string, number> = {};
      for (const e of receiver.events) byType[e.type] = (byType[e.type] ?? 0) + 1;
      send({
        event: "stats",
        byType,
        badSignatures: receiver.badSignatures.length,
        duplicates: receiver.events.length - new Set(receiver.events.map((e) => e.id)).size,
        emails: receiver.of("user.created").map((e) => e.data.email),
        /** event → arrival here, ms, of every event received */
        lags: receiver.events.map((e) => e.receivedAt - e.happenedAt),
        lastAt: Math.max(0, ...receiver.events.map((e) => e.receivedAt)),
      });
    } else if (cmd === "stop") {
      await receiver.stop();
      process.exit(0);
    }
  });
}

main().catch((error) => {
  process.stderr.write(`webhook receiver failed: ${(error as Error).stack}\n`);
  process.exit(1);
});
