/**
 * The address range a source belongs to, for the storage and registration quotas: IPv4 /24 and
 * IPv6 /48 (a typical single customer or site assignment), as a short text key. An IPv4-mapped
 * IPv6 address (::ffff:a.b.c.d, what a dual-stack socket reports for IPv4) counts as IPv4, so
 * one source cannot get two shares by switching socket families. A zone (fe80::1%eth0) is
 * ignored. Text that is not an IP address is its own prefix (it cannot come from a socket).
 */
import { isIPv4, isIPv6 } from 'node:net';

/** `a.b.c.0/24` for IPv4, `x:y:z::/48` for IPv6 (lowercase, no leading zeros). */
export function sourcePrefix(host: string): string {
  if (typeof host !== 'string') throw new TypeError('host must be a string');
  const pct = host.indexOf('%');
  const h = pct >= 0 ? host.slice(0, pct) : host;
  if (isIPv4(h)) return `${h.slice(0, h.lastIndexOf('.'))}.0/24`;
  if (!isIPv6(h)) return h;
  const groups = ipv6Groups(h);
  // ::ffff:0:0/96: IPv4-mapped.
  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff) {
    return `${groups[6]! >> 8}.${groups[6]! & 255}.${groups[7]! >> 8}.0/24`;
  }
  return `${groups[0]!.toString(16)}:${groups[1]!.toString(16)}:${groups[2]!.toString(16)}::/48`;
}

/** The eight 16-bit groups of a valid IPv6 address text (with `::` and a dotted IPv4 tail). */
function ipv6Groups(h: string): number[] {
  let text = h;
  if (text.includes('.')) {
    // The dotted IPv4 tail becomes two hex groups: ::ffff:1.2.3.4 -> ::ffff:102:304.
    const colon = text.lastIndexOf(':');
    const v4 = text.slice(colon + 1).split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, colon + 1)}${((v4[0] << 8) | v4[1]).toString(16)}:${((v4[2] << 8) | v4[3]).toString(16)}`;
  }
  const gap = text.indexOf('::');
  const parse = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  if (gap < 0) return parse(text);
  const a = parse(text.slice(0, gap));
  const b = parse(text.slice(gap + 2));
  return [...a, ...new Array<number>(8 - a.length - b.length).fill(0), ...b];
}
