/**
 * The Redis pub/sub anchor of the scale benchmark: one process with a node-redis publisher and
 * subscriber on one channel, driven like bench/scale-worker.ts, reporting arrivals of the
 * others' writes with their lag.
 */
import { createClient } from "redis";
import { z } from "zod";

const commandSchema = z.discriminatedUnion("cmd", [
  z.object({ cmd: z.literal("write"), key: z.string() }),
  z.object({ cmd: z.literal("status") }),
  z.object({ cmd: z.literal("stop") }),
]);
const messageSchema = z.object({ key: z.string(), from: z.number(), writtenAt: z.number() });

const send = (m: object) => process.send!(m);
const CHANNEL = "bench";

async function main() {
  const url = process.env.BENCH_REDIS_URL!;
  const pub = createClient({ url });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  await sub.subscribe(CHANNEL, (text) => {
    // the same work a cluster node does for a gossip write: parse, check, apply to a map
    const m = messageSchema.parse(JSON.parse(text));
    if (m.from === process.pid) return;
    table.set(m.key, m);
    send({ event: "seen", key: m.key, lagMs: performance.timeOrigin + performance.now() - m.writtenAt });
  });
  const table = new Map<string, unknown>();
  send({ event: "started" });
  process.on("message", async (raw: unknown) => {
    const m = commandSchema.parse(raw);
    if (m.cmd === "write") {
      const message = { key: m.key, from: process.pid, writtenAt: performance.timeOrigin + performance.now() };
      table.set(m.key, message);
      await pub.publish(CHANNEL, JSON.stringify(message));
    } else if (m.cmd === "status") {
      send({ event: "status", cpuUs: process.cpuUsage().user + process.cpuUsage().system });
    } else if (m.cmd === "stop") {
      await Promise.all([sub.quit(), pub.quit()]);
      process.exit(0);
    }
  });
}

main().catch((error) => {
  process.stderr.write(`redis worker failed: ${(error as Error).stack}\n`);
  process.exit(1);
});
