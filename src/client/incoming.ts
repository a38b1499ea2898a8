/**
 * Messages our peer pushes. Each PUSH carries a sealed blob (src/crypto/seal.ts): it is opened,
 * its sender checked against the sender's certificate, deduplicated by (sender, id), checked for
 * freshness, reassembled when chunked (src/client/reassembly.ts), added to the history and shown as
 * an event (a group message updates the group, src/client/groups.ts); its receipt is queued and
 * the PUSH acknowledged (the ACK leaves only after the commit, src/client/client.ts). What does not authenticate or cannot be
 * processed is rejected: counted, shown as a `rejected` event and acknowledged, so it leaves the
 * peer's mailbox. Nothing a push carries can make the client hold it at its peer for long.
 *
 * Certificates of senders come with their CARD (content kind 5), which also carries their
 * capability for us. A push from a sender whose certificate we do not have waits for its CARD
 * (which may arrive after it), in RAM and unacknowledged, at most unknownSenderGraceMs; then it is
 * rejected (`sender_unknown`). Only for a contact of ours is the certificate looked up, at the
 * contact's peer we know: never at an address named inside a message from a stranger.
 *
 * Freshness: a message sent (by its sender's clock) more than dedupeTtlMs - clockSkewMaxMs ago, or
 * more than clockSkewMaxMs ahead, is refused (`stale`), since its id may no longer be remembered;
 * so is one sent at or before its sender's dedupe floor (the newest message of that sender that
 * the window forgot early because it was full). messageTtlMs (7 days) < dedupeTtlMs -
 * clockSkewMaxMs (7 days) keeps every honest retransmission inside the window.
 *
 * Bounds (behaviour at the bound):
 *   pendingVerifyMax              pushes waiting for their sender's CARD; beyond, a push is
 *                                 rejected and acknowledged at once (`pending_full`)
 *   unknownSenderGraceMs          the longest a push waits for its sender's CARD
 *   dedupeEntriesMax, dedupeTtlMs (sender, id) seen; oldest/expired forgotten (the sender's floor
 *                                 rises to the forgotten message's sending time when it goes early)
 *   dedupeFloorsMax               senders with a floor; beyond, the oldest floor is forgotten and
 *                                 the floor of every sender without one rises to it
 */
import { MsgType } from '../protocol/constants.js';
import { openSealed, verifySender, type Opened } from '../crypto/seal.js';
import { RATCHET_VERSION } from '../crypto/ratchet.js';
import { ContentKind, decodeCard, decodeChunk, decodeReceipt, decodeText, decodeVerify } from './content.js';
import { fingerprintOf } from '../identity/certificate.js';
import { Reassembler, type ChunkIn } from './reassembly.js';
import { hex, unhex, type ClientContext } from './context.js';
import type { GroupBook } from './groups.js';
import type { CertLookups } from './lookups.js';
import type { Outgoing } from './outgoing.js';
import type { ReceiptBatch } from './receipts.js';
import type { Ratchets } from './ratchets.js';
import type { MessageRequests } from './requests.js';


interface PendingPush {
  readonly pushId: Uint8Array;
  readonly opened: Opened;
  /** When it is rejected if its sender's CARD has not come. */
  readonly deadline: number;
  /** The peer that pushed it (its ACK goes there). */
  readonly via: string;
}

export class Incoming {
  private readonly reassembler: Reassembler;
  /** Pushes waiting for their sender's certificate, by sender. */
  private readonly pending = new Map<string, PendingPush[]>();
  private pendingCount = 0;

  constructor(
    private readonly ctx: ClientContext,
    private readonly lookups: CertLookups,
    private readonly outgoing: Outgoing,
    private readonly receipts: ReceiptBatch,
    private readonly groupBook: GroupBook,
    private readonly requests: MessageRequests,
    private readonly ratchets: Ratchets,
  ) {
    this.reassembler = new Reassembler(ctx.o, (reason) => ctx.drops.add(reason));
  }

  /** Messages being reassembled. */
  get partials(): number {
    return this.reassembler.size;
  }

  /** When the oldest partial message expires. */
  nextExpiry(): number | undefined {
    return this.reassembler.nextExpiry();
  }

  /** The peer whose push is being handled: its ACK goes back there. */
  private via = '';

  /** ACK a push to the peer it came from (the same message may come from each of our peers; dedupe keeps it once). */
  private ack(pushId: Uint8Array): void {
    this.ctx.queueAck(pushId, this.via || this.ctx.peerKey);
  }

  /** A PUSH from our peer at `peerKey`. */
  onPush(now: number, pushId: Uint8Array, blob: Uint8Array, peerKey: string): void {
    this.via = peerKey;
    if (blob[0] === RATCHET_VERSION) return this.onSessionMessage(now, pushId, blob);
    const r = openSealed(this.ctx.identity, blob);
    if (!r.ok) return this.reject(pushId, `open_${r.reason}`);
    const opened = r.opened;
    if (!Buffer.from(opened.id).equals(pushId)) return this.reject(pushId, 'id_mismatch', opened.fromHex);
    if (this.requests.isBlocked(opened.fromHex)) {
      // Blocked: gone from our peer's mailbox, nothing shown, nothing sent to the sender's peer.
      this.ctx.drops.add('blocked_sender');
      this.ack(pushId);
      return;
    }
    if (opened.kind === ContentKind.CARD) return this.onCard(now, pushId, opened);
    const certHex = this.ctx.certOf(opened.fromHex);
    if (!certHex) {
      const list = this.pending.get(opened.fromHex) ?? [];
      if (list.some((p) => Buffer.from(p.pushId).equals(pushId))) return;
      if (this.pendingCount >= this.ctx.o.pendingVerifyMax) return this.reject(pushId, 'pending_full', opened.fromHex);
      list.push({ pushId, opened, deadline: now + this.ctx.o.unknownSenderGraceMs, via: peerKey });
      this.pending.set(opened.fromHex, list);
      this.pendingCount++;
      // Only a contact's certificate is looked up, at the peer we know for it.
      const contact = this.ctx.s.contacts.find((c) => c.fingerprint === opened.fromHex);
      if (contact) this.lookups.start(now, contact.fingerprint, contact.peer, true);
      return;
    }
    this.acceptOpened(now, pushId, opened);
  }

  /**
   * A message of a ratcheted session (src/client/ratchets.ts): it authenticates by opening. A
   * duplicate no longer opens (its key is gone); its push id is remembered, so it gets its receipt
   * again, as a duplicate of a sealed message does.
   */
  private onSessionMessage(now: number, pushId: Uint8Array, blob: Uint8Array): void {
    const idHex = hex(pushId);
    const seen = this.ratchets.seenFrom(idHex);
    if (seen && seen.chunkOf === undefined) {
      if (!seen.receipt && !this.requests.isBlocked(seen.fp)) this.receipt(now, seen.fp, seen.peer, [idHex]);
      this.ack(pushId);
      return;
    }
    // A chunk seen before is opened again when it can be (sent again under a new session).
    const r = this.ratchets.open(now, blob);
    if (!r.ok && seen?.chunkOf !== undefined) {
      // A copy of a chunk opened before: its receipt once the whole message was shown, else nothing.
      if (this.ctx.dedupe.has(`${seen.fp}:${seen.chunkOf}`) && !this.requests.isBlocked(seen.fp)) this.receipt(now, seen.fp, seen.peer, [idHex]);
      this.ctx.drops.add('ratchet_chunk_again');
      this.ack(pushId);
      return;
    }
    if (!r.ok) return this.reject(pushId, `ratchet_${r.reason}`);
    const opened = r.opened;
    // Our parts that waited for a session we restarted go now, if this message made it able to send.
    this.outgoing.sessionOpened(now, opened.fromHex);
    if (!Buffer.from(opened.id).equals(pushId)) return this.reject(pushId, 'id_mismatch', opened.fromHex);
    if (this.requests.isBlocked(opened.fromHex)) {
      this.ctx.drops.add('blocked_sender');
      if (this.ctx.dirty) this.ctx.persist();
      this.ack(pushId);
      return;
    }
    const chunk = opened.kind === ContentKind.CHUNK ? decodeChunk(opened.body) : null;
    this.ratchets.seen(idHex, opened.fromHex, opened.fromPeer, opened.kind === ContentKind.RECEIPT, chunk ? hex(chunk.messageId) : undefined);
    if (opened.kind === ContentKind.CARD) return this.onCard(now, pushId, opened, true);
    this.acceptOpened(now, pushId, opened, true);
  }

  /**
   * A CARD: the sender's certificate and maybe its capability for us and a ratchet start key. It
   * authenticates with the certificate it carries (whose SHA-256 must be the sender's fingerprint),
   * or by the session it came through (`bySession`).
   */
  private onCard(now: number, pushId: Uint8Array, opened: Opened, bySession = false): void {
    const card = decodeCard(opened.body);
    if (!card) return this.reject(pushId, 'bad_card', opened.fromHex);
    if (!Buffer.from(fingerprintOf(card.cert)).equals(opened.from) || (!bySession && !verifySender(opened, card.cert, this.ctx.identity.fingerprint))) {
      return this.reject(pushId, 'bad_sender', opened.fromHex);
    }
    const from = opened.fromHex;
    if (!this.ctx.certOf(from)) this.lookups.keep(from, hex(card.cert));
    // Only a contact's start key is taken: a flood of strangers' CARDs must not push contacts' sessions out.
    const contact = this.ctx.s.contacts.find((c) => c.fingerprint === from && !c.changed);
    const took = card.start && contact ? this.ratchets.accept(now, from, card.start, opened.sentAtMs) : 'ignored';
    if (took === 'kept_ours') this.outgoing.sendCardAgain(now, { fp: from, peer: contact!.peer });
    // A session we restarted and that waited for an answer was replaced by the contact's: it can send.
    if (took === 'taken') this.outgoing.sessionOpened(now, from);
    if (took === 'restarted') {
      // The contact lost or restored its side: what went through the old session goes again.
      this.outgoing.resendAfterRestart(now, from);
      this.ctx.emit({ type: 'session-restarted', with: from, by: 'them' });
    }
    if (card.cap) {
      const caps = (this.ctx.s.caps ??= {});
      if (caps[from] !== hex(card.cap)) {
        delete caps[from];
        caps[from] = hex(card.cap);
        const keys = Object.keys(caps);
        for (let i = 0; i < keys.length - this.ctx.o.certsMax; i++) delete caps[keys[i]!];
        this.ctx.dirty = true;
      }
    }
    this.receipt(now, from, opened.fromPeer, [hex(opened.id)]);
    this.ack(pushId);
    this.certificateKnown(now, from);
  }

  /** `fp`'s certificate is known now: take the pushes that waited for it. */
  certificateKnown(now: number, fp: string): void {
    const pend = this.takePending(fp);
    if (pend) {
      for (const p of pend) {
        this.via = p.via;
        this.acceptOpened(now, p.pushId, p.opened);
      }
    }
  }

  /** No certificate came for the contact `fp` (its lookup gave up with `reason`): its pushes wait for a CARD until their deadline. */
  senderMissing(_now: number, fp: string, reason: string): void {
    if (this.pending.has(fp)) this.ctx.drops.add(`sender_lookup_${reason}`);
  }

  /** When the first waiting push is due to be rejected. */
  nextPendingExpiry(): number | undefined {
    let at: number | undefined;
    for (const list of this.pending.values()) for (const p of list) if (at === undefined || p.deadline < at) at = p.deadline;
    return at;
  }

  /** Forget partial messages and (sender, id) entries that are too old; reject pushes whose sender's CARD did not come. */
  expire(now: number): void {
    this.reassembler.expire(now);
    for (const [fp, list] of [...this.pending]) {
      const due = list.filter((p) => p.deadline <= now);
      if (due.length === 0) continue;
      const rest = list.filter((p) => p.deadline > now);
      if (rest.length) this.pending.set(fp, rest);
      else this.pending.delete(fp);
      this.pendingCount -= due.length;
      for (const p of due) {
        this.via = p.via;
        this.reject(p.pushId, 'sender_unknown', fp);
      }
    }
    for (const [k, at] of this.ctx.dedupe) {
      if (at + this.ctx.o.dedupeTtlMs > now) break;
      this.ctx.forgetSeen(k);
    }
  }

  private takePending(fp: string): PendingPush[] | undefined {
    const pend = this.pending.get(fp);
    if (!pend) return undefined;
    this.pending.delete(fp);
    this.pendingCount -= pend.length;
    return pend;
  }

  /** Drop what does not authenticate, and still ACK it so it leaves the peer's mailbox. */
  private reject(pushId: Uint8Array, reason: string, from?: string): void {
    this.ratchets.unsee(hex(pushId));
    this.ctx.drops.add(reason);
    this.ctx.emit({ type: 'rejected', reason, ...(from ? { from } : {}) });
    this.ack(pushId);
  }

  private acceptOpened(now: number, pushId: Uint8Array, opened: Opened, bySession = false): void {
    const certHex = this.ctx.certOf(opened.fromHex);
    if (!certHex || (!bySession && !verifySender(opened, unhex(certHex), this.ctx.identity.fingerprint))) {
      return this.reject(pushId, 'bad_sender', opened.fromHex);
    }
    const from = opened.fromHex;
    const idHex = hex(opened.id);
    if (opened.kind !== ContentKind.RECEIPT) {
      const stale = this.staleness(now, from, opened.sentAtMs);
      if (stale) return this.reject(pushId, stale, from);
    }
    switch (opened.kind) {
      case ContentKind.RECEIPT: {
        const ids = decodeReceipt(opened.body);
        if (!ids) return this.reject(pushId, 'bad_receipt', from);
        this.outgoing.onReceipt(now, from, ids);
        break;
      }
      case ContentKind.TEXT:
      case ContentKind.VERIFY: {
        if (!this.ctx.dedupe.has(`${from}:${idHex}`)) {
          if (!this.consume(now, opened, opened.kind, opened.body, idHex)) return this.reject(pushId, 'bad_body', from);
          this.markSeen(now, `${from}:${idHex}`, opened.sentAtMs);
        }
        this.receipt(now, from, opened.fromPeer, [idHex]);
        break;
      }
      case ContentKind.CHUNK: {
        const c = decodeChunk(opened.body);
        if (!c) return this.reject(pushId, 'bad_chunk', from);
        this.addChunk(now, opened, hex(c.messageId), idHex, c);
        break;
      }
      default:
        return this.reject(pushId, 'unknown_kind', from);
    }
    // The ACK is queued here and leaves only through pollTransmit, which commits first.
    this.ack(pushId);
  }

  /** Show one complete message (TEXT or VERIFY body); false when the body is malformed. */
  private consume(now: number, opened: Opened, kind: number, body: Uint8Array, idHex: string): boolean {
    const from = opened.fromHex;
    if (kind === ContentKind.VERIFY) {
      const v = decodeVerify(body);
      if (!v) return false;
      this.ctx.emit({ type: 'verify', from, body: v });
      return true;
    }
    const t = decodeText(body);
    if (!t) return false;
    if (t.group && !t.group.members.some((m) => m.fingerprint === from)) return false;
    const s = this.ctx.s;
    const contact = s.contacts.find((c) => c.fingerprint === from && !c.changed);
    // A stranger's message is a request: shown, but its group is not learned (no group appears).
    const request = !s.contacts.some((c) => c.fingerprint === from);
    if (request && t.group) this.ctx.drops.add('group_from_stranger');
    const group = request ? undefined : t.group;
    this.ctx.addHistory({
      id: idHex, contact: from, dir: 'in', atMs: now, sentAtMs: opened.sentAtMs, text: t.text,
      ...(contact ? { fromName: contact.petname } : {}), fromPeer: opened.fromPeer,
      ...(group ? { group: { id: group.id, name: group.name, members: group.members.map((m) => ({ ...m })) } } : {}),
    });
    if (group) this.groupBook.learn(group);
    this.ctx.emit({
      type: 'message', from, ...(contact ? { fromName: contact.petname } : {}), fromPeer: opened.fromPeer, id: idHex,
      text: t.text, sentAt: opened.sentAtMs, ...(group ? { group } : {}), ...(request ? { request: true } : {}),
    });
    return true;
  }

  /** One chunk of message `msgId`; a message already seen only gets the chunk's receipt again. */
  private addChunk(now: number, opened: Opened, msgId: string, chunkId: string, c: ChunkIn): void {
    const from = opened.fromHex;
    const key = `${from}:${msgId}`;
    if (this.ctx.dedupe.has(key)) return this.receipt(now, from, opened.fromPeer, [chunkId]);
    const r = this.reassembler.add(now, key, chunkId, c, { fromPeer: opened.fromPeer, sentAtMs: opened.sentAtMs });
    if (r.status === 'mismatch') return void this.ctx.drops.add('chunk_mismatch');
    if (r.status !== 'complete') return;
    const m = r.message;
    const whole = { ...opened, sentAtMs: m.sentAtMs, fromPeer: m.fromPeer };
    if (!this.consume(now, whole, m.innerKind, m.body, msgId)) return void this.ctx.drops.add('bad_chunked_body');
    this.markSeen(now, key, m.sentAtMs);
    this.receipt(now, from, m.fromPeer, m.chunkIds);
  }

  /** Receipts go to contacts; a stranger's wait until the stranger is accepted (requests.ts). */
  private receipt(now: number, from: string, fromPeer: string, ids: string[]): void {
    if (this.ctx.s.contacts.some((c) => c.fingerprint === from)) this.receipts.add(now, from, fromPeer, ids);
    else this.requests.withhold(from, fromPeer, ids);
  }

  /**
   * Why a message sent at `sentAtMs` by `from` is refused as a possible replay, or null: outside
   * the window in which ids are remembered, or at or before the sender's floor.
   */
  private staleness(now: number, from: string, sentAtMs: number): string | null {
    const o = this.ctx.o;
    if (sentAtMs > now + o.clockSkewMaxMs) return 'stale_future';
    if (sentAtMs < now - (o.dedupeTtlMs - o.clockSkewMaxMs)) return 'stale';
    const floors = this.ctx.s.dedupeFloors;
    const floor = floors?.[from] ?? floors?.['*'];
    if (floor !== undefined && sentAtMs <= floor) return 'stale_floor';
    return null;
  }

  private markSeen(now: number, key: string, sentAtMs: number): void {
    const dedupe = this.ctx.dedupe;
    this.ctx.seen(key, now, sentAtMs);
    while (dedupe.size > this.ctx.o.dedupeEntriesMax) {
      const first = dedupe.keys().next();
      if (first.done) break;
      // Forgotten before its time: its sender's older messages can no longer be told apart.
      const sent = this.ctx.sentAt.get(first.value);
      this.ctx.forgetSeen(first.value);
      if (sent !== undefined) this.raiseFloor(first.value.slice(0, first.value.indexOf(':')), sent);
    }
  }

  /** The sender's floor rises to `sentAtMs` (dedupeFloorsMax senders; '*' holds the floor of the forgotten ones). */
  private raiseFloor(from: string, sentAtMs: number): void {
    const floors = (this.ctx.s.dedupeFloors ??= {});
    if ((floors[from] ?? -1) >= sentAtMs) return;
    delete floors[from];
    floors[from] = sentAtMs;
    const keys = Object.keys(floors).filter((k) => k !== '*');
    for (let i = 0; i < keys.length - this.ctx.o.dedupeFloorsMax; i++) {
      floors['*'] = Math.max(floors['*'] ?? 0, floors[keys[i]!]!);
      delete floors[keys[i]!];
    }
    this.ctx.dirty = true;
  }
}
