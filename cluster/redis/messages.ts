/** What travels through Redis, parsed at the boundary: fanned-out rows (`seq|record JSON`) and member heartbeats. */
import { z } from "zod";
import type { RecordEnvelope } from "../store";
import { recordSchema, toRecord } from "../wire";

export function parseRecord(json: string): RecordEnvelope | undefined {
  try {
    const parsed = recordSchema.safeParse(JSON.parse(json));
    return parsed.success ? toRecord(parsed.data) : undefined;
  } catch {
    return undefined;
  }
}

/** A published row: its bucket's sequence number and the record, or undefined when malformed. */
export function parseRowMessage(message: string): { seq: number; record: RecordEnvelope } | undefined {
  const bar = message.indexOf("|");
  if (bar <= 0 || bar > 20) return undefined;
  const seq = Number(message.slice(0, bar));
  if (!Number.isSafeInteger(seq) || seq <= 0) return undefined;
  const record = parseRecord(message.slice(bar + 1));
  return record ? { seq, record } : undefined;
}

/** A member's heartbeat entry: what it announces, when it started, how many rows it holds. */
const memberSchema = z.object({
  meta: z.record(z.string().max(1024)),
  startedAt: z.number(),
  rows: z.number().int().nonnegative().optional(),
});
export type MemberEntry = z.infer<typeof memberSchema>;

export function parseMember(json: string): MemberEntry | undefined {
  try {
    const parsed = memberSchema.safeParse(JSON.parse(json));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
