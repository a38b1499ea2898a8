/**
 * The chat's view of the history: the last CHAT_HISTORY_LINES messages on start and on /to,
 * /history [N] and /search TEXT. Lines are made by src/cli/history-format.ts (network text through
 * safeText); with --json each view is one `history` event.
 */
import type { Messenger } from '../api/messenger.js';
import type { HistoryEntry } from '../client/index.js';
import { historyJson, historyLine } from './history-format.js';

/** Messages shown on start and on /to. */
export const CHAT_HISTORY_LINES = 20;
/** Most messages /history N and /search show. */
export const CHAT_HISTORY_MAX = 1000;

export interface HistoryView {
  /** Print one text line. */
  say(line: string): void;
  /** Print one JSON event (in --json mode). */
  event(type: string, data: Record<string, unknown>): void;
  json: boolean;
  nameOf(fp: string): string;
}

/** The contact `name` refers to, or undefined for a group or an unknown name. */
function contactOf(m: Messenger, name: string | undefined): string | undefined {
  if (name === undefined || m.groups().some((g) => g.name === name || g.id === name)) return undefined;
  try {
    return m.resolveFingerprint(name);
  } catch {
    return undefined;
  }
}

function show(v: HistoryView, list: HistoryEntry[], data: Record<string, unknown>, empty: string): void {
  if (v.json) return v.event('history', { ...data, messages: list.map(historyJson) });
  if (!list.length) return empty ? v.say(empty) : undefined;
  const now = Date.now();
  for (const e of list) v.say(historyLine(e, v.nameOf, now));
}

/**
 * The last `n` messages with `target` (a contact), or with everyone when there is no target (on
 * start, where an empty history prints nothing).
 */
export function showRecent(m: Messenger, v: HistoryView, target: string | undefined, n = CHAT_HISTORY_LINES): void {
  const contact = contactOf(m, target);
  if (target !== undefined && contact === undefined) return; // a group or a name not known yet
  const list = m.history(contact, { limit: Math.min(Math.max(1, n), CHAT_HISTORY_MAX) });
  show(v, list, { contact: contact ?? null }, target ? `no messages with ${target} yet` : '');
}

/** /history [N]: the last N messages of the current conversation (all when there is none). */
export function historyCommand(m: Messenger, v: HistoryView, target: string | undefined, arg: string | undefined): void {
  const n = arg === undefined ? CHAT_HISTORY_LINES : Number(arg);
  if (!Number.isInteger(n) || n < 1) return v.say('usage: /history [N]');
  showRecent(m, v, target, n);
}

/** /search TEXT: messages whose text has these words, in the current conversation or everywhere. */
export function searchCommand(m: Messenger, v: HistoryView, target: string | undefined, text: string): void {
  if (!text) return v.say('usage: /search TEXT');
  const contact = contactOf(m, target);
  const list = m.history(contact, { limit: CHAT_HISTORY_MAX, search: text });
  show(v, list, { contact: contact ?? null, search: text }, `nothing found for "${text}"`);
}
