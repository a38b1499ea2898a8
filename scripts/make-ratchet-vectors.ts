/**
 * Writes the vectors of ratchet sessions (docs/PROTOCOL.md section 21) to test/vectors/ratchet.json:
 * a session start and a full exchange both ways with one out-of-order message, with every key,
 * header and ciphertext. Every input is fixed (the random draws are SHA-256 of a label and a
 * counter, listed in order in the file), so running it twice writes the same file.
 * Run: npx tsx scripts/make-ratchet-vectors.ts
 */
import { writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { acceptRatchet, kdfCk, ratchetDecrypt, ratchetEncrypt, startRatchet, type RatchetState } from '../src/crypto/ratchet.js';
import { encodeRatchetState } from '../src/crypto/ratchet-state.js';
import { x25519KeyPair } from '../src/crypto/session.js';

const h = (b: Uint8Array | null): string | null => (b ? Buffer.from(b).toString('hex') : null);
const sha256 = (s: string): Uint8Array => new Uint8Array(createHash('sha256').update(s).digest());
const utf8 = new TextEncoder();

const draws: string[] = [];
const random = (n: number): Uint8Array => {
  const out = sha256(`peerpost ratchet vectors/${draws.length}`).slice(0, n);
  draws.push(h(out)!);
  return out;
};

const initiatorFingerprint = sha256('initiator certificate');
const responderFingerprint = sha256('responder certificate');
const responderSecret = sha256('responder static X25519 secret');
const responder = x25519KeyPair(responderSecret);
const nowMs = 1_790_000_000_000;

const start = startRatchet({ initiatorFingerprint, responderFingerprint, responderXPublic: responder.publicKey, random });
const states: { initiator: RatchetState; responder: RatchetState } = {
  initiator: start.state,
  responder: acceptRatchet({
    initiatorFingerprint, responderFingerprint, responderXPrivate: responder.privateKey, responderXPublic: responder.publicKey, start: start.start, random,
  }),
};
const startVector = {
  initiatorFingerprint: h(initiatorFingerprint), responderFingerprint: h(responderFingerprint),
  responderSecret: h(responderSecret), responderPublic: h(responder.publicKey),
  start: h(start.start), sk: h(start.state.rk), hka: h(start.state.nhkr), nhkb: h(start.state.nhks),
  responderRatchetPublic: h(states.responder.dhsPublic), responderRootKey: h(states.responder.rk),
};

type Who = 'initiator' | 'responder';
const messages: Record<string, unknown>[] = [];
const blobs = new Map<string, Uint8Array>();

function send(from: Who, name: string, text: string): void {
  const s = states[from];
  const payload = utf8.encode(text);
  const [, messageKey] = kdfCk(s.cks!);
  const r = ratchetEncrypt(s, payload, random);
  messages.push({
    send: name, from, payload: h(payload), header: { dh: h(s.dhsPublic), pn: s.pn, n: s.ns }, headerKey: h(s.hks), chainKey: h(s.cks),
    messageKey: h(messageKey), blob: h(r.blob),
  });
  states[from] = r.state;
  blobs.set(name, r.blob);
}

function receive(to: Who, name: string): void {
  const r = ratchetDecrypt(states[to], blobs.get(name)!, nowMs, random);
  if (!r.ok) throw new Error(`${name}: ${r.reason}`);
  states[to] = r.state;
  messages.push({ receive: name, by: to, skippedAfter: r.state.skipped.length, rootKeyAfter: h(r.state.rk) });
}

send('responder', 'R0', 'first from the responder');
send('responder', 'R1', 'second from the responder');
receive('initiator', 'R1'); // out of order: R0's key is skipped, then used
receive('initiator', 'R0');
send('initiator', 'I0', 'first from the initiator');
send('initiator', 'I1', 'second from the initiator');
receive('responder', 'I0');
receive('responder', 'I1');
send('responder', 'R2', 'a new chain of the responder');
receive('initiator', 'R2');

const out = {
  nowMs,
  random: draws,
  start: startVector,
  steps: messages,
  finalStates: { initiator: h(encodeRatchetState(states.initiator)), responder: h(encodeRatchetState(states.responder)) },
};
writeFileSync(new URL('../test/vectors/ratchet.json', import.meta.url), JSON.stringify(out, null, 2) + '\n');
console.log('ratchet vectors written');
