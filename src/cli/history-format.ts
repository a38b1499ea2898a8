/**
 * How a message of the history is printed: `[date ]HH:MM name: text`, the date only when it is not
 * today, sent messages with their delivery state. Names and text come from the network and pass
 * through safeText / safeLines (src/cli/safe-text.ts).
 */
import type { HistoryEntry } from '../client/index.js';
import { safeLines, safeText } from './safe-text.js';
import { localTime } from './format.js';

/** One message as one line (more when its text has line breaks; those are indented). */
export function historyLine(e: HistoryEntry, nameOf: (fp: string) => string, now: number): string {
  const when = localTime(e.atMs, now);
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
