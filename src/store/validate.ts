/**
 * Checks of the rows read from the store, before the client sees them. A database can be edited,
 * damaged or written by another program: a value that is not well formed (a fingerprint that is
 * not 64 lowercase hex, an address that is not host:port, a state that does not exist) is refused
 * with the reason, naming the table and the row, and the row is not used.
 */
import { parseAddr } from '../core/types.js';
import type { ContactRecord, GroupRecord, HistoryEntry, OutboxMessage } from '../client/store.js';

const FP = /^[0-9a-f]{64}$/;
const ID = /^[0-9a-f]{32}$/;
const HEX = /^(?:[0-9a-f]{2})*$/;
const VERIFICATIONS = new Set(['unverified', 'verified', 'mismatch']);
const STATES = new Set(['queued', 'held', 'delivered', 'failed']);
const PEER_STATUS = new Set(['none', 'held', 'acked']);

/** Thrown by the checks: what is wrong with a row. */
export class BadValue extends Error {}

function need(ok: boolean, what: string): void {
  if (!ok) throw new BadValue(what);
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStr = (v: unknown): v is string => typeof v === 'string';
const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isAddr = (v: unknown): boolean => isStr(v) && parseAddr(v) !== null;

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new BadValue('its JSON does not parse');
  }
}

export function checkContact(v: unknown, petname: string, fingerprint: string): ContactRecord {
  need(isObj(v), 'not an object');
  const c = v as Record<string, unknown>;
  need(isStr(c.petname) && c.petname === petname && petname.length > 0, 'its petname does not match its key');
  need(isStr(c.fingerprint) && FP.test(c.fingerprint) && c.fingerprint === fingerprint, 'its fingerprint is not 64 lowercase hex digits');
  need(isAddr(c.peer), 'its peer is not HOST:PORT');
  need(c.cert === undefined || (isStr(c.cert) && c.cert.length > 0 && HEX.test(c.cert)), 'its certificate is not hex');
  need(isStr(c.verification) && VERIFICATIONS.has(c.verification), 'its verification state is unknown');
  need(typeof c.changed === 'boolean', 'its changed flag is not true or false');
  need(c.previousFingerprint === undefined || (isStr(c.previousFingerprint) && FP.test(c.previousFingerprint)), 'its previous fingerprint is not 64 lowercase hex digits');
  need(isTime(c.addedAtMs), 'its time added is not a number');
  return c as unknown as ContactRecord;
}

function checkMembers(v: unknown): void {
  need(Array.isArray(v), 'its members are not a list');
  for (const m of v as unknown[]) {
    need(isObj(m) && isStr(m.fingerprint) && FP.test(m.fingerprint), 'a member fingerprint is not 64 lowercase hex digits');
    need(isAddr((m as Record<string, unknown>).peer), 'a member peer is not HOST:PORT');
  }
}

export function checkGroup(v: unknown, id: string): GroupRecord {
  need(isObj(v), 'not an object');
  const g = v as Record<string, unknown>;
  need(isStr(g.id) && ID.test(g.id) && g.id === id, 'its id is not 32 lowercase hex digits matching its key');
  need(isStr(g.name) && g.name.length > 0, 'its name is empty');
  checkMembers(g.members);
  return g as unknown as GroupRecord;
}

export function checkCert(fingerprint: string, cert: string): void {
  need(FP.test(fingerprint), 'its fingerprint is not 64 lowercase hex digits');
  need(cert.length > 0 && HEX.test(cert), 'its certificate is not hex');
}

export function checkOutbox(v: unknown, id: string): OutboxMessage {
  need(isObj(v), 'not an object');
  const m = v as Record<string, unknown>;
  need(isStr(m.id) && ID.test(m.id) && m.id === id, 'its id is not 32 lowercase hex digits matching its key');
  need(isStr(m.to) && FP.test(m.to), 'its recipient is not a 64-hex fingerprint');
  need(isAddr(m.toPeer), 'its recipient peer is not HOST:PORT');
  need(Number.isInteger(m.kind), 'its kind is not an integer');
  need(isTime(m.createdAtMs), 'its time is not a number');
  need(isStr(m.state) && STATES.has(m.state), 'its state is unknown');
  need(m.body === undefined || (isStr(m.body) && HEX.test(m.body)), 'its body is not hex');
  need(m.plain === undefined || (isStr(m.plain) && HEX.test(m.plain)), 'its kept body is not hex');
  need(Array.isArray(m.parts), 'its parts are not a list');
  for (const p of m.parts as unknown[]) {
    need(isObj(p) && isStr(p.id) && ID.test(p.id), 'a part id is not 32 lowercase hex digits');
    const q = p as Record<string, unknown>;
    need(isStr(q.blob) && HEX.test(q.blob), 'a part blob is not hex');
    need(isStr(q.peerStatus) && PEER_STATUS.has(q.peerStatus), 'a part status is unknown');
    need(typeof q.receipt === 'boolean', 'a part receipt flag is not true or false');
    need(q.again === undefined || typeof q.again === 'boolean', 'a part flag is not true or false');
    need(q.chain === undefined || (isStr(q.chain) && HEX.test(q.chain)), 'a part chain is not hex');
    need(q.n === undefined || (Number.isInteger(q.n) && (q.n as number) >= 0), 'a part counter is not a whole number');
    need(q.waiting === undefined || isTime(q.waiting), 'a part waiting time is not a number');
  }
  return m as unknown as OutboxMessage;
}

export function checkDedupeKey(key: string, atMs: unknown, sentAtMs: unknown): void {
  need(/^[0-9a-f]{64}:[0-9a-f]{32}$/.test(key), 'its key is not fingerprint:id');
  need(isTime(atMs), 'its time is not a number');
  need(sentAtMs === null || isTime(sentAtMs), 'its sending time is not a number');
}

/** Top-level fields: those named like fingerprints and keys must be hex. */
/** A row of one of the keyed maps (KEYED_FIELDS): its value, or BadValue. */
export function checkKeyed(field: string, key: string, v: unknown): unknown {
  switch (field) {
    case 'caps':
      need(FP.test(key), 'its key is not a fingerprint');
      need(isStr(v) && v.length > 0 && HEX.test(v), 'its capability is not hex');
      return v;
    case 'cardsAcked':
      need(FP.test(key), 'its key is not a fingerprint');
      need(isTime(v), 'its time is not a number');
      return v;
    case 'dedupeFloors':
      need(FP.test(key) || key === '*', "its key is not a fingerprint or '*'");
      need(isTime(v), 'its time is not a number');
      return v;
    case 'ratchets': {
      need(FP.test(key), 'its key is not a fingerprint');
      const state = isObj(v) ? (v as Record<string, unknown>).s : undefined;
      need(isStr(state) && HEX.test(state), 'its session is not a record with hex state');
      return v;
    }
    case 'ratchetSeen':
      need(ID.test(key), 'its key is not a message id');
      need(isStr(v) && FP.test(v.slice(0, 64)), 'its value does not start with a fingerprint');
      return v;
    default:
      throw new BadValue(`its field ${JSON.stringify(field.slice(0, 40))} is unknown`);
  }
}

export function checkMeta(key: string, v: unknown): void {
  if (/Fingerprint$/.test(key)) need(isStr(v) && FP.test(v), 'it is not 64 lowercase hex digits');
  else if (/Key$/.test(key)) need(isStr(v) && v.length > 0 && HEX.test(v), 'it is not hex');
}

export interface MessageRow {
  seq: number;
  id: string;
  contact: string;
  dir: string;
  at_ms: number;
  sent_at_ms: number;
  text: string;
  state: string | null;
  reason: string | null;
  extra: string | null;
}

export function checkMessage(r: MessageRow): HistoryEntry {
  need(ID.test(r.id), 'its id is not 32 lowercase hex digits');
  need(FP.test(r.contact), 'its contact is not a 64-hex fingerprint');
  need(r.dir === 'in' || r.dir === 'out', 'its direction is not in or out');
  need(r.state === null || STATES.has(r.state), 'its state is unknown');
  const e: HistoryEntry = { id: r.id, contact: r.contact, dir: r.dir as 'in' | 'out', atMs: r.at_ms, sentAtMs: r.sent_at_ms, text: r.text };
  if (r.state !== null) e.state = r.state as HistoryEntry['state'] & string;
  if (r.reason !== null) e.reason = r.reason;
  if (r.extra !== null) {
    const x = parseJson(r.extra);
    need(isObj(x), 'its extra fields are not an object');
    const o = x as Record<string, unknown>;
    if (o.fromName !== undefined) {
      need(isStr(o.fromName), 'its sender name is not text');
      e.fromName = o.fromName as string;
    }
    if (o.fromPeer !== undefined) {
      need(isAddr(o.fromPeer), 'its sender peer is not HOST:PORT');
      e.fromPeer = o.fromPeer as string;
    }
    if (o.group !== undefined) {
      need(isObj(o.group), 'its group is not an object');
      const g = o.group as Record<string, unknown>;
      need(isStr(g.id) && ID.test(g.id) && isStr(g.name), 'its group id or name is not well formed');
      checkMembers(g.members);
      e.group = g as unknown as NonNullable<HistoryEntry['group']>;
    }
  }
  return e;
}
