/**
 * Types shared by the sans-I/O state machines (peer, client) and their drivers. The state machines
 * never touch sockets, timers, the wall clock or Math.random: the driver (or the simulator) passes
 * `now` (milliseconds, any monotonic origin the caller keeps consistent), the source address and
 * the bytes, and a `Random` source.
 */

/** A UDP endpoint. `host` is an IPv4 dotted quad or an IPv6 address without brackets. */
export interface Addr {
  readonly host: string;
  readonly port: number;
}

/** One datagram to send. */
export interface Transmit {
  readonly to: Addr;
  readonly data: Uint8Array;
}

/** Fills a fresh Uint8Array of `n` random bytes. Drivers pass crypto.randomBytes; the simulator a seeded PRNG. */
export type Random = (n: number) => Uint8Array;

/** The logger shape the core accepts (a pino logger fits). */
export interface Logger {
  debug(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

/** `host:port`, with IPv6 hosts in brackets. Used as a map key and in text. */
export function addrKey(a: Addr): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** Whether `s` is addrKey(a), compared without building the text. */
export function addrIs(s: string, a: Addr): boolean {
  const h = a.host;
  const v6 = s.charCodeAt(0) === 91; /* [ */
  const hs = v6 ? 1 : 0;
  const colon = hs + h.length + hs;
  if (s.length <= colon + 1 || s.charCodeAt(colon) !== 58 /* : */ || !s.startsWith(h, hs)) return false;
  if (v6 ? s.charCodeAt(colon - 1) !== 93 /* ] */ || !h.includes(':') : h.includes(':')) return false;
  let port = 0;
  for (let i = colon + 1; i < s.length; i++) port = port * 10 + s.charCodeAt(i) - 48;
  return port === a.port;
}

/** Parse an addrKey() string back into an Addr (the registry keeps only the text). */
export function parseAddrKey(s: string): Addr {
  const i = s.lastIndexOf(':');
  const host = s.charCodeAt(0) === 91 /* [ */ ? s.slice(1, i - 1) : s.slice(0, i);
  return { host, port: Number(s.slice(i + 1)) };
}

/** Parse `host:port` or `[v6]:port`. Returns null for anything else. */
export function parseAddr(s: string): Addr | null {
  if (typeof s !== 'string') return null;
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(s) ?? /^([^:\s[\]]+):(\d{1,5})$/.exec(s);
  if (!m) return null;
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return null;
  return { host: m[1]!, port };
}

export function sameAddr(a: Addr, b: Addr): boolean {
  return a.port === b.port && a.host === b.host;
}
