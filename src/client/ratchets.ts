/**
 * Ratcheted sessions with other clients (src/crypto/ratchet.ts, docs/PROTOCOL.md section 21.7).
 * Each session lives in the persisted snapshot (`ratchets`), so its new state is saved in the same
 * save as the message it belongs to: the outbox part made with it, or the inbox entry opened with
 * it, before the ACK.
 *
 *   - Our CARD to a client we have no session with carries a start key (we are the initiator);
 *     a contact's CARD with a start key makes us the responder, unless both sides started at once
 *     and ours is the lower fingerprint's (that one is kept, and our CARD goes again). A stranger's
 *     start key is not taken (incoming.ts).
 *   - Recovery: a contact's CARD with a new start key while a session runs means the contact lost
 *     or restarted its side (a home restored from a backup, lost state, or it found the session out
 *     of step): the new session replaces ours ('restarted'). A start key we ignored or replaced
 *     before (`old`), or one from a CARD sent no later than the CARD our session began from or
 *     the newest message opened through it (`at`, both by the contact's clock), is ignored, so a
 *     late or replayed CARD (also one the contact sent before it took our start key when both
 *     started at once) does not restart a session. restart() is our side of
 *     it: a new start key replaces a session that our messages no longer get through. A running
 *     session replaced either way is kept as `prev`, for opening only, so that messages still on
 *     their way under it open (a restart that was not needed then costs no message).
 *   - Every part (a message, a CHUNK of a long one, a receipt, a CARD) goes through the session
 *     once the session can send, and is sealed otherwise.
 *   - A blob whose first byte is RATCHET_VERSION is tried against each session in turn.
 *   - Push ids opened through a session are remembered (`ratchetSeen`), so that a duplicate, which
 *     no longer opens, still gets its receipt again. A CHUNK's is remembered with its message id:
 *     a duplicate gets a receipt only once the whole message was shown (partial messages live in
 *     RAM; a chunk lost with them is sent again under a new session, outgoing.ts).
 *
 * Bounds (behaviour at the bound):
 *   certsMax          sessions kept; beyond, the least recently used is forgotten (the next CARD
 *                     to or from that client starts a new one)
 *   dedupeEntriesMax  push ids remembered as opened through a session; the oldest is forgotten
 *                     (a duplicate of it is then refused `ratchet_key_gone`; it is shown at most
 *                     once all the same, by the (sender, id) dedupe)
 *   RATCHET_OLD_STARTS_MAX  start keys remembered as ignored or replaced per session; the oldest
 *                     is forgotten (a CARD carrying it is then refused by its time, `at`)
 *   prev              one replaced session per contact, forgotten at the next replacement or
 *                     RATCHET_SKIPPED_KEY_AGE_MAX_MS after it was replaced (its messages are then
 *                     refused `ratchet_not_this_session`, and go again under the new session)
 */
import { certKeys, identityXKeys } from '../crypto/keys.js';
import {
  acceptRatchet, ratchetCanSend, ratchetDecrypt, ratchetEncrypt, startRatchet, RATCHET_PAYLOAD_MAX_BYTES, RATCHET_SKIPPED_KEY_AGE_MAX_MS,
  type RatchetOpenReason, type RatchetState,
} from '../crypto/ratchet.js';
import { decodeRatchetState, encodeRatchetState } from '../crypto/ratchet-state.js';
import { seal, SEAL_FROM_PEER_MAX_BYTES, SEAL_KIND_MAX, type Opened, type SealInput } from '../crypto/seal.js';
import { cborDecodeChecked, cborEncode } from '../protocol/cbor.js';
import { MESSAGE_ID_BYTES } from '../protocol/constants.js';
import { parseAddr } from '../core/types.js';
import { hex, unhex, type ClientContext } from './context.js';
import type { RatchetRecord } from './store.js';

const utf8 = new TextEncoder();
const NONE = new Uint8Array(0);

export type RatchetOpen = { ok: true; opened: Opened } | { ok: false; reason: RatchetOpenReason | 'bad_inner' };

/** Start keys remembered per session as ignored or replaced (RatchetRecord.old). */
export const RATCHET_OLD_STARTS_MAX = 8;

/** A part's blob, and where it sits in the session's sending chain when it went through one. */
export interface PartBlob {
  blob: Uint8Array;
  /** First 16 hex of the sending ratchet key, and the message counter in that chain. */
  chain?: string;
  n?: number;
}

function withOld(old: string | undefined, start: string): string {
  const list = (old ? old.split(' ') : []).filter((x) => x !== start && x !== '');
  list.push(start);
  return list.slice(-RATCHET_OLD_STARTS_MAX).join(' ');
}

export class Ratchets {
  /** `fp:start` of the start keys we answered with ours (RAM, at most certsMax): a duplicate CARD gets no second answer. */
  private readonly answered = new Set<string>();
  /** Decoded states by fingerprint, valid while the stored hex is the one decoded. */
  private readonly cache = new Map<string, { s: string; state: RatchetState }>();

  constructor(private readonly ctx: ClientContext) {}

  private records(): Record<string, RatchetRecord> {
    return (this.ctx.s.ratchets ??= {});
  }

  private get(fp: string): RatchetState | undefined {
    const rec = this.ctx.s.ratchets?.[fp];
    if (!rec) return undefined;
    const c = this.cache.get(fp);
    if (c && c.s === rec.s) return c.state;
    try {
      const state = decodeRatchetState(unhex(rec.s));
      this.cache.set(fp, { s: rec.s, state });
      return state;
    } catch {
      delete this.records()[fp];
      this.cache.delete(fp);
      this.ctx.drops.add('ratchet_bad_state');
      this.ctx.dirty = true;
      return undefined;
    }
  }

  private put(fp: string, state: RatchetState, patch?: Partial<Omit<RatchetRecord, 's'>>): void {
    const all = this.records();
    const s = hex(encodeRatchetState(state));
    const rec: RatchetRecord = { ...all[fp], start: all[fp]?.start ?? '', ...patch, s };
    if (rec.at === undefined) delete rec.at;
    if (!rec.old) delete rec.old;
    if (rec.prev === undefined || rec.prevAt === undefined) {
      delete rec.prev;
      delete rec.prevAt;
    }
    delete all[fp]; // re-inserted last: the order is least recently used first
    all[fp] = rec;
    this.cache.set(fp, { s, state });
    const keys = Object.keys(all);
    for (let i = 0; i < keys.length - this.ctx.o.certsMax; i++) {
      delete all[keys[i]!];
      this.cache.delete(keys[i]!);
    }
    this.ctx.dirty = true;
  }

  /**
   * Change fields of `fp`'s record (undefined removes one) without moving it in the order. The
   * record is replaced, never changed in place: the store's change tracker finds changed records
   * by identity (src/client/changes.ts), and committed records are frozen.
   */
  private patch(fp: string, fields: Partial<RatchetRecord>): void {
    const all = this.records();
    const rec: Record<string, unknown> = { ...all[fp], ...fields };
    for (const k of Object.keys(rec)) if (rec[k] === undefined) delete rec[k];
    all[fp] = rec as unknown as RatchetRecord;
    this.ctx.dirty = true;
  }

  /** The start key our CARD to `fp` carries: a new session unless we have one (then the same start while it waits, none once it runs). */
  startFor(fp: string, certHex: string): Uint8Array | undefined {
    const cur = this.get(fp);
    if (cur) return ratchetCanSend(cur) ? undefined : cur.dhsPublic;
    return this.begin(fp, certHex);
  }

  private begin(fp: string, certHex: string, old?: string, prev?: Pick<RatchetRecord, 'prev' | 'prevAt'>): Uint8Array | undefined {
    const keys = certKeys(unhex(certHex));
    if (!keys) return undefined;
    const { state, start } = startRatchet({
      initiatorFingerprint: this.ctx.identity.fingerprint, responderFingerprint: keys.fingerprint, responderXPublic: keys.xPublicRaw, random: this.ctx.random,
    });
    this.put(fp, state, { start: hex(start), at: undefined, old, ...prev });
    return start;
  }

  /** The `prev` of a record whose session `rec` is replaced at `now`: that session if it was running, else the one it kept. */
  private replaced(now: number, rec: RatchetRecord | undefined, cur: RatchetState | undefined): Pick<RatchetRecord, 'prev' | 'prevAt'> {
    if (rec && cur && ratchetCanSend(cur)) return { prev: rec.s, prevAt: Math.floor(now) };
    return rec?.prev !== undefined ? { prev: rec.prev, prevAt: rec.prevAt } : { prev: undefined, prevAt: undefined };
  }

  /**
   * Our messages through the session with `fp` no longer get through (it lost or restored its
   * side): a new session from a new start key replaces it, which our next CARD carries. Until
   * `fp` answers, our messages to it are sealed. False when `fp`'s certificate gives no key.
   */
  restart(now: number, fp: string, certHex: string): boolean {
    const rec = this.ctx.s.ratchets?.[fp];
    const prev = this.replaced(now, rec, this.get(fp));
    this.cache.delete(fp);
    return this.begin(fp, certHex, rec?.start ? withOld(rec.old, rec.start) : rec?.old, prev) !== undefined;
  }

  /** True when a session with `fp` can send now. */
  canSend(fp: string): boolean {
    const state = this.get(fp);
    return !!state && ratchetCanSend(state);
  }

  /**
   * A CARD from `fp`, sent at `sentAtMs` (its sender's clock), carried `start`. Returns
   * 'kept_ours' when both started and ours is kept: the caller then sends our CARD again, so that
   * `fp` gets our start key even if it had ignored it; 'restarted' when the new start key replaced a
   * running session (the caller tells the user, and sends again through the new session what
   * went through the old one).
   */
  accept(now: number, fp: string, start: Uint8Array, sentAtMs: number): 'taken' | 'ignored' | 'kept_ours' | 'restarted' {
    const rec = this.ctx.s.ratchets?.[fp];
    const startHex = hex(start);
    if (rec && (rec.start === startHex || (rec.old ?? '').split(' ').includes(startHex))) return 'ignored'; // a CARD sent again, or replayed
    const cur = this.get(fp);
    const running = !!cur && ratchetCanSend(cur);
    if (running && rec!.at !== undefined && sentAtMs <= rec!.at) return 'ignored'; // older than the session we run
    // Both started at once: the session of the lower fingerprint is kept.
    if (cur && !running && this.ctx.fingerprint < fp) {
      const key = `${fp}:${startHex}`;
      if (this.answered.has(key)) return 'ignored';
      if (this.answered.size >= this.ctx.o.certsMax) this.answered.clear();
      this.answered.add(key);
      this.put(fp, cur, { old: withOld(rec!.old, startHex) });
      return 'kept_ours';
    }
    const mine = identityXKeys(this.ctx.identity);
    let state: RatchetState;
    try {
      state = acceptRatchet({
        initiatorFingerprint: unhex(fp), responderFingerprint: this.ctx.identity.fingerprint, responderXPrivate: mine.xPrivate,
        responderXPublic: mine.xPublicRaw, start, random: this.ctx.random,
      });
    } catch {
      this.ctx.drops.add('ratchet_bad_start');
      return 'ignored';
    }
    this.put(fp, state, { start: startHex, at: sentAtMs, old: rec?.start ? withOld(rec.old, rec.start) : rec?.old, ...this.replaced(now, rec, cur) });
    return running ? 'restarted' : 'taken';
  }

  /** The blob of one part to `fp`: through the session when it can send, else sealed to `certHex`. */
  blobFor(fp: string, certHex: string, c: SealInput): Uint8Array {
    return this.partFor(fp, certHex, c).blob;
  }

  /** blobFor, with the sending chain and counter when it went through the session. */
  partFor(fp: string, certHex: string, c: SealInput): PartBlob {
    const state = this.get(fp);
    if (state && ratchetCanSend(state)) {
      const payload = cborEncode([c.kind, this.ctx.senderPeer, c.id, c.sentAtMs, c.body]);
      if (payload.length <= RATCHET_PAYLOAD_MAX_BYTES) {
        const r = ratchetEncrypt(state, payload, this.ctx.random);
        this.put(fp, r.state);
        return { blob: r.blob, chain: hex(state.dhsPublic).slice(0, 16), n: state.ns };
      }
    }
    return { blob: this.sealed(certHex, c) };
  }

  /** Sealed to `certHex`, never through the session. */
  sealed(certHex: string, c: SealInput): Uint8Array {
    return seal({ sender: this.ctx.identity, senderPeer: this.ctx.senderPeer, recipientCert: unhex(certHex), content: c, random: this.ctx.random });
  }

  /** Opens a session message with the session it belongs to; the new state is kept (saved with what the caller saves next). */
  open(now: number, blob: Uint8Array): RatchetOpen {
    let reason: RatchetOpenReason = 'not_this_session';
    const nowMs = Math.max(0, Math.floor(now));
    const fps = Object.keys(this.ctx.s.ratchets ?? {});
    for (const fp of fps) {
      const state = this.get(fp);
      if (!state) continue;
      const r = ratchetDecrypt(state, blob, nowMs, this.ctx.random);
      if (!r.ok) {
        if (r.reason !== 'not_this_session') reason = r.reason;
        continue;
      }
      const opened = parsePayload(fp, r.payload);
      const at = this.ctx.s.ratchets?.[fp]?.at;
      this.put(fp, r.state, opened ? { at: Math.max(at ?? 0, opened.sentAtMs) } : {});
      return opened ? { ok: true, opened } : { ok: false, reason: 'bad_inner' };
    }
    // A message still on its way under a session that was replaced.
    for (const fp of fps) {
      const rec = this.ctx.s.ratchets?.[fp];
      if (rec?.prev === undefined || rec.prevAt === undefined) continue;
      if (nowMs - rec.prevAt > RATCHET_SKIPPED_KEY_AGE_MAX_MS) {
        this.patch(fp, { prev: undefined, prevAt: undefined });
        continue;
      }
      let prev: RatchetState;
      try {
        prev = decodeRatchetState(unhex(rec.prev));
      } catch {
        this.patch(fp, { prev: undefined, prevAt: undefined });
        this.ctx.drops.add('ratchet_bad_state');
        continue;
      }
      const r = ratchetDecrypt(prev, blob, nowMs, this.ctx.random);
      if (!r.ok) {
        if (r.reason !== 'not_this_session') reason = r.reason;
        continue;
      }
      this.patch(fp, { prev: hex(encodeRatchetState(r.state)) });
      const opened = parsePayload(fp, r.payload);
      return opened ? { ok: true, opened } : { ok: false, reason: 'bad_inner' };
    }
    return { ok: false, reason };
  }

  /** Forget push `id` (hex): it was refused after it opened, so a duplicate gets no receipt. */
  unsee(id: string): void {
    const all = this.ctx.s.ratchetSeen;
    if (all && id in all) {
      delete all[id];
      this.ctx.dirty = true;
    }
  }

  /**
   * Remember that push `id` (hex) from `fp`, whose peer is `peer`, was opened through a session:
   * a receipt, or a CHUNK of message `chunkOf` (hex), or else a whole message.
   */
  seen(id: string, fp: string, peer: string, receipt: boolean, chunkOf?: string): void {
    const all = (this.ctx.s.ratchetSeen ??= {});
    all[id] = `${fp} ${peer}${receipt ? ' r' : chunkOf ? ` c${chunkOf}` : ''}`;
    const keys = Object.keys(all);
    for (let i = 0; i < keys.length - this.ctx.o.dedupeEntriesMax; i++) delete all[keys[i]!];
    this.ctx.dirty = true;
  }

  /** Who sent push `id` (hex) that was opened through a session, from which peer, whether it was a receipt, and the message it is a chunk of. */
  seenFrom(id: string): { fp: string; peer: string; receipt: boolean; chunkOf?: string } | undefined {
    const v = this.ctx.s.ratchetSeen?.[id];
    if (typeof v !== 'string') return undefined;
    const [fp, peer, r] = v.split(' ');
    if (!fp || !peer) return undefined;
    return { fp, peer, receipt: r === 'r', ...(r?.startsWith('c') ? { chunkOf: r.slice(1) } : {}) };
  }
}

/** `[kind, fromPeer, id, sentAtMs, body]` as an Opened authenticated by the session (no signature). */
function parsePayload(fp: string, payload: Uint8Array): Opened | null {
  const d = cborDecodeChecked(payload);
  if (!d.ok || !Array.isArray(d.value) || d.value.length !== 5) return null;
  const [kind, fromPeer, id, sentAtMs, body] = d.value as unknown[];
  if (typeof kind !== 'number' || !Number.isInteger(kind) || kind < 0 || kind > SEAL_KIND_MAX) return null;
  if (typeof fromPeer !== 'string' || utf8.encode(fromPeer).length > SEAL_FROM_PEER_MAX_BYTES || !parseAddr(fromPeer)) return null;
  if (!(id instanceof Uint8Array) || id.length !== MESSAGE_ID_BYTES) return null;
  if (typeof sentAtMs !== 'number' || !Number.isSafeInteger(sentAtMs) || sentAtMs < 0) return null;
  if (!(body instanceof Uint8Array)) return null;
  return {
    kind, from: unhex(fp), fromHex: fp, fromPeer, id: new Uint8Array(id), sentAtMs, body: new Uint8Array(body),
    ephemeral: NONE, signedFields: NONE, signature: NONE,
  };
}
