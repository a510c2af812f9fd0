/** Standard Webhooks signatures: `v1,` + base64 HMAC-SHA256 of "id.timestamp.body" with the secret's bytes. */
import { createHmac, timingSafeEqual } from "node:crypto";

export function sign(secret: Uint8Array, id: string, timestamp: number, body: string): string {
  return `v1,${createHmac("sha256", secret).update(`${id}.${timestamp}.${body}`).digest("base64")}`;
}

/** The receiver's check (what a consumer runs; our tests run an independent copy of it). */
export function verify(secret: Uint8Array, id: string, timestamp: number, body: string, header: string): boolean {
  const expected = Buffer.from(sign(secret, id, timestamp, body).slice(3), "base64");
  return header.split(" ").some((part) => {
    if (!part.startsWith("v1,")) return false;
    const given = Buffer.from(part.slice(3), "base64");
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}
