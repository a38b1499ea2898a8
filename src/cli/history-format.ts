/**
 * How a message of the history is printed: `[date ]HH:MM name: text`, the date only when it is not
 * today, sent messages with their delivery state. Names and text come from the network and pass
 * through safeText / safeLines (src/cli/safe-text.ts).
 */
import type { HistoryEntry } from '../client/index.js';
import { safeLines, safeText } from './safe-text.js';

const pad = (n: number): string => String(n).padStart(2, '0');

/** `HH:MM`, with `YYYY-MM-DD ` before it when `ms` is not on the day of `now` (local time). */
export function stamp(ms: number, now: number): string {
  const d = new Date(ms);
  const t = new Date(now);
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  const sameDay = d.getFullYear() === t.getFullYear() && d.getMonth() === t.getMonth() && d.getDate() === t.getDate();
  return sameDay ? hm : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${hm}`;
}

/** One message as one line (more when its text has line breaks; those are indented). */
export function historyLine(e: HistoryEntry, nameOf: (fp: string) => string, now: number): string {
  const when = stamp(e.atMs, now);
  const group = e.group ? ` in ${safeText(e.group.name)}` : '';
  if (e.dir === 'out') {
    const state = e.state === 'failed' ? `FAILED${e.reason ? `: ${e.reason}` : ''}` : e.state ?? '';
    return `${when} me → ${safeText(nameOf(e.contact))}${group}: ${safeLines(e.text, '    ')}  [${state}]`;
  }
  return `${when} ${safeText(nameOf(e.contact))}${group}: ${safeLines(e.text, '    ')}`;
}

/** A message as --json prints it. */
export function historyJson(e: HistoryEntry): Record<string, unknown> {
  return { ...e };
}
