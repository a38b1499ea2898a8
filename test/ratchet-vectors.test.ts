/**
 * Ratchet sessions against test/vectors/ratchet.json (written by scripts/make-ratchet-vectors.ts):
 * the keys, headers and ciphertexts are recomputed here from node:crypto primitives directly, so
 * the vectors check src/crypto/ratchet.ts rather than repeat it; then the exchange is replayed
 * through the API with the same random draws and must give the same bytes.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { createDecipheriv, createHmac, createPrivateKey, createPublicKey, diffieHellman, hkdfSync } from 'node:crypto';
import { acceptRatchet, ratchetDecrypt, ratchetEncrypt, startRatchet, type RatchetState } from '../src/crypto/ratchet.js';
import { encodeRatchetState } from '../src/crypto/ratchet-state.js';
import { x25519KeyPair } from '../src/crypto/session.js';

interface SendStep { send: string; from: 'initiator' | 'responder'; payload: string; header: { dh: string; pn: number; n: number }; headerKey: string; chainKey: string; messageKey: string; blob: string }
interface ReceiveStep { receive: string; by: 'initiator' | 'responder'; skippedAfter: number; rootKeyAfter: string }
const v = JSON.parse(readFileSync(new URL('./vectors/ratchet.json', import.meta.url), 'utf8')) as {
  nowMs: number;
  random: string[];
  start: Record<string, string>;
  steps: (SendStep | ReceiveStep)[];
  finalStates: { initiator: string; responder: string };
};
const b = (x: string): Buffer => Buffer.from(x, 'hex');
const s = v.start;
const x25519 = (secret: Buffer, pub: Buffer): Buffer => diffieHellman({
  privateKey: createPrivateKey({ key: Buffer.concat([b('302e020100300506032b656e04220420'), secret]), format: 'der', type: 'pkcs8' }),
  publicKey: createPublicKey({ key: Buffer.concat([b('302a300506032b656e032100'), pub]), format: 'der', type: 'spki' }),
});
const ad = Buffer.concat([Buffer.from('peerpost/1 ratchet ad'), b(s.initiatorFingerprint!), b(s.responderFingerprint!)]);

t.test('the start: X25519 of the start key and the responder key, HKDF split', async (t) => {
  const shared = x25519(b(v.random[0]!), b(s.responderPublic!));
  t.same(x25519(b(s.responderSecret!), b(s.start!)), shared, 'both sides agree');
  const okm = Buffer.from(hkdfSync('sha256', shared, Buffer.concat([b(s.start!), b(s.responderPublic!)]),
    Buffer.concat([Buffer.from('peerpost/1 ratchet start'), b(s.initiatorFingerprint!), b(s.responderFingerprint!)]), 96));
  t.same([okm.subarray(0, 32), okm.subarray(32, 64), okm.subarray(64)].map((x) => x.toString('hex')), [s.sk, s.hka, s.nhkb]);
  const out = x25519(b(v.random[1]!), b(s.start!));
  const root = Buffer.from(hkdfSync('sha256', out, b(s.sk!), Buffer.from('peerpost/1 ratchet root'), 96));
  t.equal(root.subarray(0, 32).toString('hex'), s.responderRootKey, 'the responder\'s first root key');
  const first = v.steps[0] as SendStep;
  t.equal(root.subarray(32, 64).toString('hex'), first.chainKey, 'and its first sending chain key');
  t.equal(first.headerKey, s.hka, 'the responder\'s first header key is HKa');
});

t.test('each message: message key, header and body open with node:crypto alone', async (t) => {
  for (const step of v.steps) {
    if (!('send' in step)) continue;
    const blob = b(step.blob);
    t.equal(createHmac('sha256', b(step.chainKey)).update(Uint8Array.of(1)).digest('hex'), step.messageKey, `${step.send}: message key`);
    const hd = createDecipheriv('chacha20-poly1305', b(step.headerKey), blob.subarray(1, 13), { authTagLength: 16 });
    hd.setAAD(Buffer.concat([blob.subarray(0, 1), ad]), { plaintextLength: 40 });
    hd.setAuthTag(blob.subarray(53, 69));
    const header = Buffer.concat([hd.update(blob.subarray(13, 53)), hd.final()]);
    t.same({ dh: header.subarray(0, 32).toString('hex'), pn: header.readUInt32BE(32), n: header.readUInt32BE(36) }, step.header, `${step.send}: header`);
    const okm = Buffer.from(hkdfSync('sha256', b(step.messageKey), Buffer.alloc(32), Buffer.from('peerpost/1 ratchet message'), 44));
    const d = createDecipheriv('chacha20-poly1305', okm.subarray(0, 32), okm.subarray(32), { authTagLength: 16 });
    d.setAAD(Buffer.concat([ad, blob.subarray(0, 69)]), { plaintextLength: blob.length - 85 });
    d.setAuthTag(blob.subarray(blob.length - 16));
    const plain = Buffer.concat([d.update(blob.subarray(69, blob.length - 16)), d.final()]);
    const len = plain.readUInt16BE(0);
    t.equal(plain.subarray(2, 2 + len).toString('hex'), step.payload, `${step.send}: payload`);
    t.ok(plain.subarray(2 + len).every((x) => x === 0), `${step.send}: zero padding`);
    t.equal(blob[0], 2, `${step.send}: version 2`);
    t.equal(blob.length, 256);
  }
});

t.test('the API replays the exchange byte for byte', async (t) => {
  let i = 0;
  const random = (n: number): Uint8Array => {
    const d = b(v.random[i++]!);
    if (d.length !== n) throw new Error(`draw ${i - 1} is ${d.length} bytes, ${n} asked`);
    return new Uint8Array(d);
  };
  const responder = x25519KeyPair(b(s.responderSecret!));
  const fps = { initiatorFingerprint: b(s.initiatorFingerprint!), responderFingerprint: b(s.responderFingerprint!) };
  const st = startRatchet({ ...fps, responderXPublic: responder.publicKey, random });
  t.equal(Buffer.from(st.start).toString('hex'), s.start);
  const states: Record<'initiator' | 'responder', RatchetState> = {
    initiator: st.state,
    responder: acceptRatchet({ ...fps, responderXPrivate: responder.privateKey, responderXPublic: responder.publicKey, start: st.start, random }),
  };
  const blobs = new Map<string, Uint8Array>();
  for (const step of v.steps) {
    if ('send' in step) {
      const r = ratchetEncrypt(states[step.from], b(step.payload), random);
      t.equal(Buffer.from(r.blob).toString('hex'), step.blob, `${step.send} encrypts to the vector`);
      states[step.from] = r.state;
      blobs.set(step.send, r.blob);
    } else {
      const r = ratchetDecrypt(states[step.by], blobs.get(step.receive)!, v.nowMs, random);
      t.ok(r.ok, `${step.receive} opens`);
      if (!r.ok) return;
      t.equal(r.state.skipped.length, step.skippedAfter);
      t.equal(Buffer.from(r.state.rk).toString('hex'), step.rootKeyAfter);
      states[step.by] = r.state;
    }
  }
  t.equal(i, v.random.length, 'every draw used');
  t.equal(Buffer.from(encodeRatchetState(states.initiator)).toString('hex'), v.finalStates.initiator);
  t.equal(Buffer.from(encodeRatchetState(states.responder)).toString('hex'), v.finalStates.responder);
});
