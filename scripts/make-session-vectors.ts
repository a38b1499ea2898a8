/**
 * Writes the vectors of the session key schedule and of delivery capabilities
 * (docs/PROTOCOL.md sections 8 and 10.1) to test/vectors/session.json. Every input is a fixed
 * byte pattern, so running it twice writes the same file; every intermediate value is named.
 * Run: npx tsx scripts/make-session-vectors.ts
 */
import { writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import {
  capabilityField, capabilityId, capabilityKey, deriveSession, registerSigned, sealSession, wrapDeliveryKey, x25519, x25519KeyPair,
} from '../src/crypto/session.js';
import { MsgType } from '../src/protocol/constants.js';

const seq = (start: number, n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (start + i) & 0xff);
const h = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const sha256 = (b: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(b).digest());

const clientSecret = seq(0x01, 32);
const peerSecret = seq(0x41, 32);
const nonce = seq(0x10, 16);
const cookie = seq(0xc0, 20);
const clientFingerprint = sha256(new TextEncoder().encode('client certificate'));
const peerFingerprint = sha256(new TextEncoder().encode('peer certificate'));
const deliveryKey = seq(0x00, 32);

const client = x25519KeyPair(clientSecret);
const peer = x25519KeyPair(peerSecret);
const shared = x25519(client.privateKey, peer.publicKey)!;
const sharedPeerSide = x25519(peer.privateKey, client.publicKey)!;
if (h(shared) !== h(sharedPeerSide)) throw new Error('X25519 disagrees');
const keys = deriveSession({ shared, nonce, clientFingerprint, peerFingerprint, clientKey: client.publicKey, peerKey: peer.publicKey });
const wrappedKey = wrapDeliveryKey(keys.wrap, deliveryKey);
const signedProof = registerSigned({ cookie, peerFingerprint, nonce, peerKey: peer.publicKey, clientKey: client.publicKey, wrappedKey });
const ok = sealSession(keys.p2c, keys.sessionId, 0, { type: MsgType.OK, ref: nonce });
const keepalive = sealSession(keys.c2p, keys.sessionId, 1, { type: MsgType.KEEPALIVE, answer: true });

const contactFingerprint = sha256(new TextEncoder().encode('contact certificate'));
const to = clientFingerprint;
const id = seq(0xa0, 16);
const capId = capabilityId(deliveryKey, contactFingerprint);
const capKey = capabilityKey(deliveryKey, capId);
const cap = capabilityField(capId, capKey, to, id);

const out = {
  session: {
    clientSecret: h(clientSecret), clientKey: h(client.publicKey), peerSecret: h(peerSecret), peerKey: h(peer.publicKey),
    nonce: h(nonce), cookie: h(cookie), clientFingerprint: h(clientFingerprint), peerFingerprint: h(peerFingerprint),
    shared: h(shared), sessionId: h(keys.sessionId), c2p: h(keys.c2p), p2c: h(keys.p2c), wrap: h(keys.wrap),
    deliveryKey: h(deliveryKey), wrappedKey: h(wrappedKey), registerSigned: h(signedProof),
    registrationOk: h(ok), keepaliveCounter1: h(keepalive),
  },
  capability: { deliveryKey: h(deliveryKey), contactFingerprint: h(contactFingerprint), capId: h(capId), capKey: h(capKey), to: h(to), id: h(id), cap: h(cap) },
};
writeFileSync(new URL('../test/vectors/session.json', import.meta.url), JSON.stringify(out, null, 2) + '\n');
console.log('session and capability vectors written');
