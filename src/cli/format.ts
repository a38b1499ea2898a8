/**
 * How the terminal shows times, delivery states and names. One time zone everywhere: the local one,
 * with the date when the day is not today; JSON carries ISO 8601 with the local offset. Colours
 * only on a terminal, and never with NO_COLOR set (https://no-color.org).
 */
import pc from 'picocolors';
import { safeText } from './safe-text.js';

/** A message that arrived this much later than it was sent is marked as late. */
export const LATE_AFTER_MS = 5 * 60_000;

const two = (n: number): string => String(n).padStart(2, '0');

/** `HH:MM` for today, `YYYY-MM-DD HH:MM` for any other day, local time. */
export function localTime(ms: number, nowMs: number): string {
  const d = new Date(ms);
  const now = new Date(nowMs);
  const hm = `${two(d.getHours())}:${two(d.getMinutes())}`;
  const sameDay = d.getFullYear() === now.getFullYear() && d.getMonth() === now.getMonth() && d.getDate() === now.getDate();
  return sameDay ? hm : `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${hm}`;
}

/** ISO 8601 in local time with its offset, like `2026-11-29T21:05:03.120+01:00`. */
export function isoLocal(ms: number): string {
  const d = new Date(ms);
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const abs = Math.abs(off);
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}T${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}${sign}${two(Math.floor(abs / 60))}:${two(abs % 60)}`;
}

/** `(late: sent 14:02)` when a message arrived more than LATE_AFTER_MS after it was sent, else ''. */
export function lateMark(sentAtMs: number, receivedAtMs: number, nowMs: number): string {
  return receivedAtMs - sentAtMs > LATE_AFTER_MS ? ` (late: sent ${localTime(sentAtMs, nowMs)})` : '';
}

/** What each reason of a `queued` or `failed` message means, in words. */
const REASONS: Record<string, string> = {
  'certificate-pending': 'fetching the recipient\'s certificate',
  'waiting-for-recipient': 'waiting for the recipient\'s device to take earlier messages',
  'too-many-unacked': 'the recipient has not yet taken earlier messages',
  'mailbox-full': 'the recipient\'s mailbox at their peer is full',
  'storage-full': 'the recipient\'s peer is out of room',
  'rate-limited': 'the recipient\'s peer asks us to slow down',
  'certificate-not-found': 'the recipient is not registered at that peer',
  'certificate-unreachable': 'the recipient\'s peer does not answer',
  'fingerprint-mismatch': 'the certificate there does not match the fingerprint',
  'bad-certificate': 'the recipient\'s certificate is not valid',
  'peer-unavailable': 'our peer does not answer',
  'not-registered': 'not yet registered with our peer',
  expired: 'not delivered within the message lifetime',
  'session-restarting': 'waiting for the contact to answer the new encrypted session',
  'session-skip-bound': 'too far ahead in an encrypted session the recipient lost',
};

/** `reason (what it means)` for a known reason, the reason itself otherwise. */
export function explainReason(reason: string): string {
  const known = REASONS[reason];
  return known ? `${reason}: ${known}` : safeText(reason);
}

/** The text of a delivery state; a `queued` without a reason says it waits for its turn. */
export function deliveryLabel(state: string, reason: string | undefined): string {
  if (state === 'held' && reason === 'session-restarting') return `held (${explainReason(reason)})`;
  if (state === 'held') return reason === 'delivered-to-device' ? 'delivered to device, waiting for receipt' : 'held at their peer';
  if (state === 'queued') return `queued (${reason ? explainReason(reason) : 'waiting for its turn to be sent'})`;
  if (state === 'failed') return `FAILED: ${reason ? explainReason(reason) : 'unknown reason'}`;
  return state;
}

/** Colours for the chat; all identity functions when colour is off. */
export interface Palette {
  name(s: string): string;
  me(s: string): string;
  dim(s: string): string;
  ok(s: string): string;
  warn(s: string): string;
  bad(s: string): string;
  request(s: string): string;
}

/** Colour on when `isTty` and NO_COLOR is unset or empty (FORCE_COLOR turns it on anywhere). */
export function colourWanted(isTty: boolean, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env['NO_COLOR'] !== undefined && env['NO_COLOR'] !== '') return false;
  if (env['FORCE_COLOR'] !== undefined && env['FORCE_COLOR'] !== '0') return true;
  return isTty;
}

export function palette(on: boolean): Palette {
  const c = pc.createColors(on);
  const NAME_COLOURS = [c.cyan, c.magenta, c.yellow, c.blue, c.green];
  return {
    name: (s) => {
      let h = 0;
      for (const ch of s) h = (h * 31 + ch.codePointAt(0)!) >>> 0;
      return c.bold(NAME_COLOURS[h % NAME_COLOURS.length]!(s));
    },
    me: (s) => c.bold(s),
    dim: (s) => c.dim(s),
    ok: (s) => c.green(s),
    warn: (s) => c.yellow(s),
    bad: (s) => c.bold(c.red(s)),
    request: (s) => c.bold(c.yellow(s)),
  };
}
