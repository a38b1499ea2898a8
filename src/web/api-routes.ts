/**
 * The page's small JSON endpoints under /api/: each one a call of the embedding API (src/api,
 * the same Messenger the chat uses) and nothing more. Requests reach these handlers only after
 * guard.ts let them through. Bodies are JSON objects of at most WEB_BODY_BYTES_MAX bytes; a field
 * of the wrong type is a 400 with a stable code (PEERPOST_WEB_BAD_REQUEST); an API error keeps
 * its own code (PeerpostError) and is a 400 too. Text is returned exactly as stored: the page
 * shows it with text nodes only.
 *
 * Conversations and unread counts are made from the newest CONVERSATION_SCAN_MAX messages of the
 * history; a message counts as unread when it arrived after the newest message the page showed in
 * that conversation when it marked it read (`POST /api/read { key, last }`; without `last`, or
 * when `last` is not among those messages, everything up to the mark's time). A mark never moves
 * back. Marks are kept in memory for this start, READ_MARKS_MAX of them.
 */
import type { Messenger } from '../api/messenger.js';
import { identityCodeAsync } from '../codes/identity-code.js';
import { UsageError } from '../core/errors.js';
import { fingerprintFromHex } from '../identity/certificate.js';
import { updateConfig } from '../identity/home.js';
import type { HistoryEntry } from '../client/index.js';

/** Largest JSON body accepted; a bigger one is refused with 413. */
export const WEB_BODY_BYTES_MAX = 64 * 1024;
/** Messages of the history scanned to list conversations and count unread ones. */
export const CONVERSATION_SCAN_MAX = 1000;
/** Messages a history request may ask for at once. */
export const WEB_HISTORY_LIMIT_MAX = 500;
/** Read marks kept; past it the oldest is forgotten (its conversation then counts from the start). */
export const READ_MARKS_MAX = 4096;

/**
 * How far a conversation was read: up to a time (every message that arrived then or before), or
 * up to a message (`id`, which arrived at `atMs`; a message of the same millisecond stored after
 * it is still unread).
 */
export interface ReadMark {
  atMs: number;
  id?: string;
}

export interface RouteContext {
  m: Messenger;
  home: string;
  /** The page's own URL (for /api/me). */
  url: string;
  readMarks: Map<string, ReadMark>;
  /** When this server started: messages before it count as read. */
  startedAtMs: number;
  now: () => number;
}

export interface RouteInput {
  query: URLSearchParams;
  body: Record<string, unknown>;
}

export type Route = (ctx: RouteContext, input: RouteInput) => unknown;

function bad(message: string): UsageError {
  return new UsageError('PEERPOST_WEB_BAD_REQUEST', message);
}

function str(o: Record<string, unknown>, key: string, opt = false): string {
  const v = o[key];
  if (v === undefined && opt) return '';
  if (typeof v !== 'string' || (!opt && v === '')) throw bad(`"${key}" must be a non-empty string`);
  return v;
}

function param(q: URLSearchParams, key: string): string {
  const v = q.get(key);
  if (v === null || v === '') throw bad(`the query needs "${key}"`);
  return v;
}

/**
 * Marks conversation `key` read up to the message `last` the page showed (its arrival time), or
 * up to now. The order in which the page's read and a new message reach the server does not
 * matter: a message the page had not shown yet stays unread.
 */
function mark(ctx: RouteContext, key: string, last: string | undefined): void {
  let next: ReadMark = { atMs: ctx.now() };
  if (last !== undefined) {
    const shown = ctx.m.history(undefined, { limit: CONVERSATION_SCAN_MAX }).find((e) => e.id === last && conversationKey(e) === key);
    if (shown) next = { atMs: shown.atMs, id: shown.id };
  }
  const before = ctx.readMarks.get(key);
  // Never back: an earlier time, or a message of the same millisecond as a mark by time, keeps the mark.
  if (before && (before.atMs > next.atMs || (before.atMs === next.atMs && before.id === undefined))) next = before;
  ctx.readMarks.delete(key);
  ctx.readMarks.set(key, next);
  if (ctx.readMarks.size > READ_MARKS_MAX) ctx.readMarks.delete(ctx.readMarks.keys().next().value!);
}

/** The conversation a history entry belongs to: `g:ID` for a group, else the contact's fingerprint. */
export function conversationKey(e: Pick<HistoryEntry, 'contact' | 'group'>): string {
  return e.group ? `g:${e.group.id}` : e.contact;
}

function publicContact(c: ReturnType<Messenger['contacts']>[number]): Record<string, unknown> {
  return {
    name: c.petname, fingerprint: c.fingerprint, peer: c.peer, address: `${c.fingerprint}@${c.peer}`,
    verification: c.verification, changed: c.changed, certificate: c.cert !== undefined,
  };
}

/** One member's copy of a sent group message: its id and delivery state. */
interface GroupPart {
  id: string;
  state?: HistoryEntry['state'];
  reason?: string;
}

type MergedEntry = HistoryEntry & { ids?: string[]; parts?: GroupPart[] };

/**
 * Sent group messages are stored once per member: shown once, with the state of the member whose
 * delivery is least advanced (failed, then queued, then held, then delivered), and each member's
 * copy in `parts` (the page follows each one's live state).
 */
function mergeGroupSends(list: HistoryEntry[]): MergedEntry[] {
  const rank = { failed: 0, queued: 1, held: 2, delivered: 3 } as const;
  const out: MergedEntry[] = [];
  const byKey = new Map<string, MergedEntry & { ids: string[]; parts: GroupPart[] }>();
  const part = (e: HistoryEntry): GroupPart => ({ id: e.id, ...(e.state ? { state: e.state } : {}), ...(e.reason !== undefined ? { reason: e.reason } : {}) });
  for (const e of list) {
    if (e.dir !== 'out') {
      out.push(e);
      continue;
    }
    const k = `${e.sentAtMs}\u0000${e.text}`;
    const seen = byKey.get(k);
    if (!seen) {
      const first = { ...e, ids: [e.id], parts: [part(e)] };
      byKey.set(k, first);
      out.push(first);
      continue;
    }
    seen.ids.push(e.id);
    seen.parts.push(part(e));
    if (e.state && seen.state && rank[e.state] < rank[seen.state]) {
      seen.state = e.state;
      if (e.reason !== undefined) seen.reason = e.reason;
      else delete seen.reason;
    }
  }
  return out;
}

function conversations(ctx: RouteContext): unknown[] {
  const { m } = ctx;
  const recent = m.history(undefined, { limit: CONVERSATION_SCAN_MAX });
  const convs = new Map<string, { kind: string; key: string; name: string; unread: number; last?: HistoryEntry; contact?: unknown }>();
  for (const c of m.contacts()) convs.set(c.fingerprint, { kind: 'contact', key: c.fingerprint, name: c.petname, unread: 0, contact: publicContact(c) });
  for (const g of m.groups()) convs.set(`g:${g.id}`, { kind: 'group', key: `g:${g.id}`, name: g.name, unread: 0 });
  // Marks by message whose message was passed (history is in the order messages were stored).
  const passed = new Set<string>();
  for (const e of recent) {
    const key = conversationKey(e);
    const readTo = ctx.readMarks.get(key) ?? { atMs: ctx.startedAtMs };
    let c = convs.get(key);
    if (!c) {
      // A stranger who wrote (a message request), or a group we only know from its messages.
      c = e.group
        ? { kind: 'group', key, name: e.group.name, unread: 0 }
        : { kind: 'request', key, name: e.fromName ?? e.contact.slice(0, 12), unread: 0 };
      convs.set(key, c);
    }
    c.last = e;
    const unread = e.atMs > readTo.atMs || (e.atMs === readTo.atMs && readTo.id !== undefined && passed.has(key));
    if (e.dir === 'in' && unread) c.unread++;
    if (e.id === readTo.id) passed.add(key);
  }
  return [...convs.values()]
    .map((c) => ({ ...c, last: c.last ? { text: c.last.text, atMs: c.last.atMs, dir: c.last.dir } : undefined }))
    .sort((a, b) => (b.last?.atMs ?? 0) - (a.last?.atMs ?? 0) || a.name.localeCompare(b.name));
}

function history(ctx: RouteContext, q: URLSearchParams): unknown {
  const limitText = q.get('limit') ?? '50';
  const limit = Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > WEB_HISTORY_LIMIT_MAX) throw bad(`"limit" must be an integer from 1 to ${WEB_HISTORY_LIMIT_MAX}`);
  const before = q.get('before') ?? undefined;
  const group = q.get('group');
  if (group !== null) {
    const all = ctx.m.history(undefined, { limit: CONVERSATION_SCAN_MAX, ...(before ? { before } : {}) });
    return { messages: mergeGroupSends(all.filter((e) => e.group?.id === group)).slice(-limit) };
  }
  const contact = param(q, 'with');
  const list = ctx.m.history(contact, { limit, ...(before ? { before } : {}) }).filter((e) => !e.group);
  return { messages: list };
}

async function me(ctx: RouteContext): Promise<unknown> {
  const code = await identityCodeAsync(ctx.m.identity.fingerprint);
  return { address: ctx.m.address, fingerprint: ctx.m.fingerprint, code, registered: ctx.m.registered };
}

function groupByRef(m: Messenger, ref: string): { id: string; name: string } {
  const g = m.groups().find((x) => x.id === ref || x.name === ref);
  if (!g) throw new UsageError('PEERPOST_UNKNOWN_GROUP', `no group "${ref}"`);
  return g;
}

function fingerprintArg(o: Record<string, unknown>): string {
  const fp = str(o, 'fingerprint');
  if (!fingerprintFromHex(fp)) throw new UsageError('PEERPOST_BAD_FINGERPRINT', 'a fingerprint is 64 lowercase hex digits');
  return fp;
}

/** `METHOD /path` -> handler. */
export const ROUTES: Record<string, Route> = {
  'GET /api/me': (ctx) => me(ctx),
  'GET /api/contacts': (ctx) => ({ contacts: ctx.m.contacts().map(publicContact) }),
  'POST /api/contacts': (ctx, { body }) => {
    const name = str(body, 'name', true);
    return { contact: publicContact(ctx.m.addContact(str(body, 'address').trim(), name.trim() || undefined)) };
  },
  'POST /api/contacts/confirm': (ctx, { body }) => {
    ctx.m.confirmContact(str(body, 'name'));
    return {};
  },
  'GET /api/conversations': (ctx) => ({ conversations: conversations(ctx) }),
  'GET /api/history': (ctx, { query }) => history(ctx, query),
  'POST /api/read': (ctx, { body }) => {
    const last = body.last === undefined ? undefined : str(body, 'last');
    mark(ctx, str(body, 'key'), last);
    return {};
  },
  'POST /api/send': (ctx, { body }) => {
    const text = str(body, 'text');
    if (typeof body.group === 'string') return { ids: ctx.m.sendGroup(groupByRef(ctx.m, body.group).id, text) };
    return { ids: ctx.m.send(str(body, 'to'), text) };
  },
  'GET /api/codes': async (ctx, { query }) => {
    const ref = param(query, 'with');
    const fp = ctx.m.resolveFingerprint(ref);
    return { ...(await ctx.m.codes(fp)), fingerprint: fp };
  },
  'POST /api/verify': (ctx, { body }) => {
    ctx.m.verify(str(body, 'with'));
    return {};
  },
  'POST /api/verify/answer': (ctx, { body }) => {
    if (typeof body.match !== 'boolean') throw bad('"match" must be true or false');
    ctx.m.confirmVerification(str(body, 'with'), body.match);
    return {};
  },
  'GET /api/groups': (ctx) => ({ groups: ctx.m.groups() }),
  'POST /api/groups': (ctx, { body }) => {
    const members = body.members;
    if (!Array.isArray(members) || !members.every((x) => typeof x === 'string')) throw bad('"members" must be a list of contact names');
    return { id: ctx.m.createGroup(str(body, 'name'), members as string[]) };
  },
  'POST /api/requests/accept': (ctx, { body }) => {
    const name = str(body, 'name', true).trim();
    return { contact: publicContact(ctx.m.acceptRequest(fingerprintArg(body), name || undefined)) };
  },
  'POST /api/requests/block': async (ctx, { body }) => {
    ctx.m.block(fingerprintArg(body));
    // Kept where the chat keeps it, so that the next start (web or terminal) blocks it too.
    await updateConfig(ctx.home, { blocked: ctx.m.blocked() });
    return {};
  },
};
