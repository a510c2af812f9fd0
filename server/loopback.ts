/** Which host names and addresses are this machine's own: local mode serves only those. */
import { isIP } from "node:net";

/** `localhost`, `127.x.x.x`, `::1` (bracketed or not); names are compared case-insensitively. */
export function isLoopbackHost(host: string): boolean {
  const name = host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, "$1");
  if (name === "localhost" || name.endsWith(".localhost")) return true;
  if (isIP(name) === 4) return name.startsWith("127.");
  if (isIP(name) === 6) return name === "::1" || name === "0:0:0:0:0:0:0:1" || /^::ffff:127\./.test(name);
  return false;
}
