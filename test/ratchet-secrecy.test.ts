/**
 * Forward secrecy, healing and encrypted headers of ratchet sessions, each against an attacker who
 * recorded every blob a peer saw and at time T obtains both key files and both complete states.
 * Every scenario runs twice: with ratchet sessions, and with today's sealing to long-term keys,
 * on which each property fails (so these tests would fail on a design without forward secrecy).
 */
import t from 'tap';
import { generateIdentity, type Identity } from '../src/identity/certificate.js';
import { identityXKeys } from '../src/crypto/keys.js';
import { acceptRatchet, ratchetDecrypt, type RatchetState } from '../src/crypto/ratchet.js';
import { decodeRatchetState, encodeRatchetState } from '../src/crypto/ratchet-state.js';
import { openSealed, seal } from '../src/crypto/seal.js';
import { NOW_MS, PEER, RatchetPair, seeded, type Side } from './helpers/ratchet-pair.js';

const [alice, bob] = await Promise.all([generateIdentity({ commonName: 'alice' }), generateIdentity({ commonName: 'bob' })]);
if (!alice || !bob) throw new Error('identities');

const utf8 = new TextEncoder();
const text = new TextDecoder();

/** What a thief takes at T: both key files and both saved states, as stored bytes. */
interface Stolen {
  readonly ids: Record<Side, Identity>;
  readonly states: Record<Side, Uint8Array> | null;
}

interface Blob {
  readonly from: Side;
  readonly blob: Uint8Array;
  readonly text: string;
}

/** One conversation, with the messages in transit recorded. */
interface Transport {
  send(from: Side, text: string): Blob;
  deliver(b: Blob): void;
  steal(): Stolen;
}

function ratchetTransport(seed: string): Transport & { pair: RatchetPair } {
  const pair = new RatchetPair(alice!, bob!, seed);
  return {
    pair,
    send: (from, s) => pair.send(from, s),
    deliver: (b) => {
      const got = pair.deliver(b as never);
      if (got !== b.text) throw new Error(`delivery failed: ${got}`);
    },
    steal: () => ({ ids: { a: alice!, b: bob! }, states: { a: encodeRatchetState(pair.states.a), b: encodeRatchetState(pair.states.b) } }),
  };
}

/** Today's design: every message sealed to the recipient's certificate. */
function sealTransport(seed: string): Transport {
  const random = seeded(seed);
  const ids = { a: alice!, b: bob! };
  return {
    send: (from, s) => ({
      from, text: s,
      blob: seal({ sender: ids[from], senderPeer: PEER, recipientCert: ids[from === 'a' ? 'b' : 'a'].cert, random, content: { kind: 1, id: random(16), sentAtMs: NOW_MS, body: utf8.encode(s) } }),
    }),
    deliver: () => {},
    steal: () => ({ ids, states: null }),
  };
}

/**
 * Every way the thief has to read a recorded blob: each stolen state (decoded afresh for each
 * blob, so order does not matter), a session it starts itself from the responder's key file and
 * the start key in the sealed CARD, and opening sealed blobs with either key file.
 */
function readable(stolen: Stolen, blob: Uint8Array, cardStart: Uint8Array | null): string | null {
  for (const side of ['a', 'b'] as const) {
    const o = openSealed(stolen.ids[side], blob);
    if (o.ok) return text.decode(o.opened.body);
  }
  const states: RatchetState[] = [];
  if (stolen.states) states.push(decodeRatchetState(stolen.states.a), decodeRatchetState(stolen.states.b));
  if (cardStart) {
    const bx = identityXKeys(stolen.ids.b);
    states.push(acceptRatchet({
      initiatorFingerprint: stolen.ids.a.fingerprint, responderFingerprint: stolen.ids.b.fingerprint, responderXPrivate: bx.xPrivate,
      responderXPublic: bx.xPublicRaw, start: cardStart, random: seeded('thief'),
    }));
  }
  for (const s of states) {
    const r = ratchetDecrypt(s, blob, NOW_MS, seeded('thief'));
    if (r.ok) return text.decode(r.payload);
  }
  return null;
}

/** A conversation with DH ratchet steps, reordering and one message still in transit at T. */
function beforeT(tr: Transport): { sent: Blob[]; inTransit: Blob } {
  const sent: Blob[] = [];
  const go = (from: Side, s: string): Blob => {
    const b = tr.send(from, s);
    sent.push(b);
    return b;
  };
  tr.deliver(go('b', 'b: hello'));
  tr.deliver(go('a', 'a: hi'));
  const x = go('b', 'b: one');
  const y = go('b', 'b: two');
  tr.deliver(y);
  tr.deliver(x);
  tr.deliver(go('a', 'a: three'));
  tr.deliver(go('b', 'b: four'));
  tr.deliver(go('a', 'a: five'));
  tr.deliver(go('b', 'b: six'));
  const inTransit = tr.send('b', 'b: in transit at T');
  return { sent, inTransit };
}

t.test('forward secrecy: at T the thief reads no message delivered before T', async (t) => {
  const tr = ratchetTransport('fs');
  const { sent, inTransit } = beforeT(tr);
  const stolen = tr.steal();
  const card = openSealed(bob!, tr.pair.log[0]!.blob);
  const cardStart = card.ok ? card.opened.body : null;
  t.ok(cardStart, 'the sealed CARD opens with the responder\'s key file: it carries the start key (and certificate, capability)');
  for (const b of sent) t.equal(readable(stolen, b.blob, cardStart), null, `"${b.text}" stays unreadable`);
  t.equal(readable(stolen, inTransit.blob, cardStart), 'b: in transit at T', 'a message still in transit at T is readable (its key is in the state)');
  tr.deliver(inTransit);

  const old = sealTransport('fs-seal');
  const o = beforeT(old);
  const oldStolen = old.steal();
  t.same(o.sent.map((b) => readable(oldStolen, b.blob, null)), o.sent.map((b) => b.text), 'with today\'s sealing the thief reads every one of them');
});

/**
 * After T the thief loses access but keeps recording, and follows the conversation with copies of
 * the stolen states: it reads what those states can open and moves them along, as the parties do.
 */
function follow(stolen: Stolen, blobs: Blob[]): (string | null)[] {
  if (!stolen.states) return blobs.map((b) => readable(stolen, b.blob, null));
  const s = { a: decodeRatchetState(stolen.states.a), b: decodeRatchetState(stolen.states.b) };
  const random = seeded('follower');
  return blobs.map((b) => {
    const to: Side = b.from === 'a' ? 'b' : 'a';
    const r = ratchetDecrypt(s[to], b.blob, NOW_MS, random);
    if (!r.ok) return null;
    s[to] = r.state;
    return text.decode(r.payload);
  });
}

function afterT(tr: Transport, first: Side): Blob[] {
  const second: Side = first === 'a' ? 'b' : 'a';
  const out: Blob[] = [];
  for (const [from, s] of [[first, 'x1'], [second, 'x2'], [first, 'x3'], [second, 'x4'], [first, 'x5'], [second, 'x6']] as const) {
    const b = tr.send(from, `${from}: ${s}`);
    tr.deliver(b);
    out.push(b);
  }
  return out;
}

t.test('healing: one round trip after T, the stolen states read nothing new', async (t) => {
  // At T the last event was a receiving DH step at a, so a's next message carries a ratchet key b
  // has not seen: b answers from a key drawn after T, and a's answer to that is out of reach.
  const tr = ratchetTransport('heal');
  beforeT(tr);
  const stolen = tr.steal();
  const after = afterT(tr, 'a');
  const got = follow(stolen, after);
  t.same(got.slice(0, 2), ['a: x1', 'b: x2'], 'the round trip right after T is readable');
  t.same(got.slice(2), [null, null, null, null], 'every message after it is not');

  const old = sealTransport('heal-seal');
  beforeT(old);
  const oldAfter = afterT(old, 'a');
  t.same(follow(old.steal(), oldAfter), oldAfter.map((b) => b.text), 'with today\'s sealing the thief reads everything after T too');
});

t.test('healing when the first message after T carries a key the other side has already seen', async (t) => {
  // b's message "in transit" was delivered, so at T b has sent from its current key and a has
  // answered nothing yet: a's next key is drawn after T but b's is not, hence half a round trip more.
  const tr = ratchetTransport('heal-2');
  const { inTransit } = beforeT(tr);
  tr.deliver(inTransit);
  tr.deliver(tr.send('a', 'a: seven'));
  const stolen = tr.steal();
  const got = follow(stolen, afterT(tr, 'a'));
  t.same(got.slice(0, 3), ['a: x1', 'b: x2', 'a: x3'], 'one round trip and one message are readable');
  t.same(got.slice(3), [null, null, null], 'then nothing');
});

/** Ratchet keys of `keys` that appear anywhere in `blobs`. */
function leakedKeys(blobs: Uint8Array[], keys: Uint8Array[]): number {
  const hex = blobs.map((b) => Buffer.from(b).toString('hex'));
  return keys.filter((k) => hex.some((h) => h.includes(Buffer.from(k).toString('hex')))).length;
}

/** Byte offsets in the first 69 bytes where four messages of one chain show a counter 0, 1, 2, 3 apart. */
function counterPlaces(chain: Uint8Array[]): number[] {
  const places: number[] = [];
  for (let off = 1; off + 4 <= 69; off++) {
    const c = chain.map((b) => Buffer.from(b).readUInt32BE(off));
    if (c[1]! - c[0]! === 1 && c[2]! - c[1]! === 1 && c[3]! - c[2]! === 1) places.push(off);
  }
  return places;
}

t.test('headers are encrypted: no ratchet key and no counter in the clear', async (t) => {
  const tr = ratchetTransport('headers');
  tr.pair.exchange('b', 'first');
  const blobs: Uint8Array[] = [];
  const plain: Uint8Array[] = [];
  const keys: Uint8Array[] = [];
  for (let i = 0; i < 40; i++) {
    const from: Side = i % 8 < 4 ? 'b' : 'a';
    const st = tr.pair.states[from];
    keys.push(st.dhsPublic);
    const blob = tr.pair.exchange(from, `m${i}`).blob;
    blobs.push(blob);
    // The same message as a design without header encryption would send it: version, key, PN, N.
    const h = Buffer.alloc(40);
    h.set(st.dhsPublic);
    h.writeUInt32BE(st.pn, 32);
    h.writeUInt32BE(st.ns, 36);
    plain.push(Buffer.concat([blob.subarray(0, 1), h, blob.subarray(41)]));
  }
  const distinct = [...new Map(keys.map((k) => [Buffer.from(k).toString('hex'), k])).values()];
  t.equal(distinct.length, 10, 'ten chains, ten sender keys');
  t.equal(leakedKeys(blobs, distinct), 0, 'no sender ratchet public key appears in any blob');
  for (let c = 0; c < 5; c++) t.same(counterPlaces(blobs.slice(8 * c, 8 * c + 4)), [], `no counter in chain ${c}`);
  t.equal(leakedKeys(plain, distinct), 10, 'with plain headers every key shows');
  t.same(counterPlaces(plain.slice(8, 12)), [37], 'and the counter shows at its place');
});
