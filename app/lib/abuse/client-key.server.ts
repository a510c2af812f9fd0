/** The unit a per-client limit counts: one IPv4 address, or one IPv6 /64 (what one subscriber gets). */
import { isIP } from "node:net";

/** `203.0.113.7` → itself; `2001:db8:1:2:aa::1` → `2001:db8:1:2::/64`; IPv4-mapped IPv6 → the IPv4. */
export function clientKey(ip: string): string {
  const address = ip.trim().toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  if (mapped) return mapped[1]!;
  if (isIP(address) !== 6) return address;
  return `${expandIpv6(address.replace(/%.*$/, "")).slice(0, 4).join(":")}::/64`;
}

/** Eight 16-bit groups, without leading zeros, with `::` filled in. */
function expandIpv6(address: string): string[] {
  let text = address;
  // a trailing dotted IPv4 is the last two groups
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const fill = tail === undefined ? [] : Array(8 - left.length - right.length).fill("0");
  return [...left, ...fill, ...right].map((group) => (parseInt(group, 16) || 0).toString(16));
}
