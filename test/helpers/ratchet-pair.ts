/**
 * Two identities joined by a ratchet session for tests: the initiator's CARD start sealed with
 * today's seal, then messages either way through the ratchet, each recorded as a peer would see it.
 */
import { createHash } from 'node:crypto';
import { certKeys, identityXKeys } from '../../src/crypto/keys.js';
import { acceptRatchet, ratchetDecrypt, ratchetEncrypt, startRatchet, type RatchetState } from '../../src/crypto/ratchet.js';
import { openSealed, seal } from '../../src/crypto/seal.js';
import type { Identity } from '../../src/identity/certificate.js';

export const PEER = '192.0.2.10:40000';
export const NOW_MS = 1_790_000_000_000;

/** Deterministic Random: SHA-256(seed || counter) blocks. */
export function seeded(seed: string): (n: number) => Uint8Array {
  let counter = 0;
  return (n) => {
    const out = new Uint8Array(n);
    for (let off = 0; off < n; off += 32) {
      const block = createHash('sha256').update(`${seed}/${counter++}`).digest();
      out.set(block.subarray(0, Math.min(32, n - off)), off);
    }
    return out;
  };
}

export type Side = 'a' | 'b';

export interface Recorded {
  readonly index: number;
  readonly from: Side;
  readonly blob: Uint8Array;
  readonly text: string;
  /** True for the sealed CARD that starts the session. */
  readonly sealed: boolean;
}

const utf8 = new TextEncoder();

/** `a` starts the session with `b`. */
export class RatchetPair {
  readonly states: Record<Side, RatchetState>;
  readonly log: Recorded[] = [];
  readonly random: (n: number) => Uint8Array;
  readonly ids: Record<Side, Identity>;

  constructor(a: Identity, b: Identity, seed: string) {
    this.random = seeded(seed);
    this.ids = { a, b };
    const bKeys = certKeys(b.cert)!;
    const { state, start } = startRatchet({
      initiatorFingerprint: a.fingerprint, responderFingerprint: b.fingerprint, responderXPublic: bKeys.xPublicRaw, random: this.random,
    });
    const card = seal({ sender: a, senderPeer: PEER, recipientCert: b.cert, random: this.random, content: { kind: 5, id: this.random(16), sentAtMs: NOW_MS, body: start } });
    this.log.push({ index: 0, from: 'a', blob: card, text: 'CARD', sealed: true });
    const opened = openSealed(b, card);
    if (!opened.ok) throw new Error('card does not open');
    const bx = identityXKeys(b);
    const bState = acceptRatchet({
      initiatorFingerprint: a.fingerprint, responderFingerprint: b.fingerprint, responderXPrivate: bx.xPrivate, responderXPublic: bx.xPublicRaw,
      start: opened.opened.body, random: this.random,
    });
    this.states = { a: state, b: bState };
  }

  send(from: Side, text: string): Recorded {
    const r = ratchetEncrypt(this.states[from], utf8.encode(text), this.random);
    this.states[from] = r.state;
    const rec = { index: this.log.length, from, blob: r.blob, text, sealed: false };
    this.log.push(rec);
    return rec;
  }

  /** Delivers to the other side; returns the text or the refusal reason. */
  deliver(rec: Recorded, nowMs = NOW_MS): string {
    const to: Side = rec.from === 'a' ? 'b' : 'a';
    const r = ratchetDecrypt(this.states[to], rec.blob, nowMs, this.random);
    if (!r.ok) return `refused:${r.reason}`;
    this.states[to] = r.state;
    return new TextDecoder().decode(r.payload);
  }

  /** Sends and delivers at once; throws if it does not arrive intact. */
  exchange(from: Side, text: string): Recorded {
    const rec = this.send(from, text);
    const got = this.deliver(rec);
    if (got !== text) throw new Error(`message ${rec.index} arrived as ${got}`);
    return rec;
  }
}
