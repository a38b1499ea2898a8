/**
 * The home record against test/vectors/home-record.json (scripts/make-home-record-vectors.ts):
 * the body, the signature input and the topic are rebuilt here from node:crypto and the vector's
 * own bytes, the signature is checked with node:crypto, and every way a record can be forged or
 * replayed is refused with its reason.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { createHash, createPublicKey, verify } from 'node:crypto';
import { generateIdentity } from '../src/identity/certificate.js';
import {
  HOME_PEERS_MAX, encodeHomeBody, homeSignatureInput, homeTopic, signHomeRecord, verifyHomeValue, identityPublicKey,
} from '../src/discovery/home-record.js';
import { cborEncode } from '../src/protocol/cbor.js';
import type { HomeRecord } from '../src/core/home.js';

interface Vectors {
  identity: { cert: string; fingerprint: string; publicKey: string };
  record: { fingerprint: string; peers: { host: string; port: number; fingerprint: string }[]; seq: number; timeMs: number };
  body: string;
  signatureInput: string;
  value: string;
  topic: string;
}
const v = JSON.parse(readFileSync(new URL('./vectors/home-record.json', import.meta.url), 'utf8')) as Vectors;
const b = (x: string): Buffer => Buffer.from(x, 'hex');
const hex = (x: Uint8Array): string => Buffer.from(x).toString('hex');
const record: HomeRecord = {
  fingerprint: b(v.record.fingerprint),
  peers: v.record.peers.map((p) => ({ host: p.host, port: p.port, fingerprint: b(p.fingerprint) })),
  seq: v.record.seq,
  timeMs: v.record.timeMs,
};

t.test('vectors: body, signature input, value, topic', async (t) => {
  t.equal(hex(createHash('sha256').update(b(v.identity.cert)).digest()), v.identity.fingerprint, 'fingerprint is SHA-256 of the certificate');
  t.equal(hex(encodeHomeBody(record)), v.body);
  t.equal(v.body.slice(0, 2), '85', 'body is an array of 5');
  t.equal(v.signatureInput, hex(Buffer.from('peerpost/2 home-record', 'ascii')) + v.body);
  t.equal(hex(homeSignatureInput(b(v.body))), v.signatureInput);
  t.equal(hex(createHash('sha256').update('peerpost/2 home-topic').update(b(v.identity.fingerprint)).digest()), v.topic);
  t.equal(hex(homeTopic(b(v.identity.fingerprint))), v.topic);
  // value = [body, sig, cert]: the signature sits at a fixed place after the body's byte-string head.
  const value = b(v.value);
  const r = verifyHomeValue(value, { fingerprint: b(v.identity.fingerprint), publicKey: b(v.identity.publicKey) });
  t.ok(r.ok, r.ok ? 'vector verifies' : r.detail);
  if (!r.ok) return;
  t.same(r.home.record.peers.map((p) => `${p.host}:${p.port}`), ['198.51.100.7:7777', '2001:db8::1:443']);
  t.equal(r.home.record.seq, v.record.seq);
  const sigStart = value.indexOf(b(v.body)) + b(v.body).length + 2;
  const sig = value.subarray(sigStart, sigStart + 64);
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b(v.identity.publicKey).toString('base64url') }, format: 'jwk' });
  t.ok(verify(null, b(v.signatureInput), key, sig), 'node:crypto verifies the signature over the signature input');
});

t.test('a sender refuses forged, replayed and malformed values', async (t) => {
  const alice = await generateIdentity({ commonName: 'alice' });
  const mallory = await generateIdentity({ commonName: 'mallory' });
  const peerFp = new Uint8Array(32).fill(9);
  const rec = (seq: number, fp = alice.fingerprint): HomeRecord => ({ fingerprint: fp, peers: [{ host: '127.0.0.1', port: 7777, fingerprint: peerFp }], seq, timeMs: 1000 });
  const good = signHomeRecord(alice, rec(5));
  const ask = { fingerprint: alice.fingerprint, publicKey: identityPublicKey(alice) };
  t.ok(verifyHomeValue(good, ask).ok);
  const reason = (value: Uint8Array, o: Parameters<typeof verifyHomeValue>[1] = ask): string => {
    const r = verifyHomeValue(value, o);
    return r.ok ? 'ok' : r.reason;
  };
  t.equal(reason(good, { ...ask, heldSeq: 5 }), 'stale_seq', 'same seq as held');
  t.equal(reason(good, { ...ask, heldSeq: 6 }), 'stale_seq', 'older seq');
  t.equal(reason(good, { ...ask, heldSeq: 4 }), 'ok', 'newer seq');
  t.equal(reason(signHomeRecord(mallory, rec(9, mallory.fingerprint)), ask), 'wrong_fingerprint', "mallory's record for alice's fingerprint");
  t.equal(reason(good, { ...ask, publicKey: identityPublicKey(mallory) }), 'wrong_key', "alice's value under mallory's DHT key");
  // Mallory signs a record naming alice, carrying alice's certificate: the signature fails.
  const body = encodeHomeBody(rec(99));
  const forgedSig = mallory.sign(homeSignatureInput(body));
  t.equal(reason(cborEncode([body, forgedSig, alice.cert])), 'bad_signature', 'signed by another key');
  // A body altered after signing.
  const goodSig = alice.sign(homeSignatureInput(body));
  const altered = encodeHomeBody({ ...rec(99), peers: [{ host: '203.0.113.66', port: 7777, fingerprint: peerFp }] });
  t.equal(reason(cborEncode([altered, goodSig, alice.cert])), 'bad_signature', 'peers changed after signing');
  // Alice's own signature over a body that names another fingerprint.
  const otherBody = encodeHomeBody(rec(7, mallory.fingerprint));
  t.equal(reason(cborEncode([otherBody, alice.sign(homeSignatureInput(otherBody)), alice.cert])), 'wrong_fingerprint');
  // A signature over the body without the label.
  t.equal(reason(cborEncode([body, alice.sign(body), alice.cert])), 'bad_signature', 'no domain label');
  for (const junk of [new Uint8Array(0), new Uint8Array(2000), Uint8Array.of(0xa0), cborEncode([1, 2, 3]), cborEncode([body, goodSig.subarray(1), alice.cert]), good.subarray(0, good.length - 1)]) {
    t.not(reason(junk), 'ok', `junk of ${junk.length} bytes refused`);
  }
  t.throws(() => signHomeRecord(alice, { ...rec(1), peers: Array.from({ length: HOME_PEERS_MAX + 1 }, (_, i) => ({ host: '127.0.0.1', port: 1000 + i, fingerprint: peerFp })) }), { code: 'PEERPOST_HOME_RECORD' });
  t.throws(() => signHomeRecord(alice, { ...rec(1), peers: [] }), { code: 'PEERPOST_HOME_RECORD' });
  t.throws(() => signHomeRecord(alice, { ...rec(1), peers: [{ host: 'a b', port: 1, fingerprint: peerFp }] }), { code: 'PEERPOST_HOME_RECORD' });
  t.throws(() => signHomeRecord(alice, rec(1, mallory.fingerprint)), { code: 'PEERPOST_HOME_RECORD' });
  t.throws(() => signHomeRecord(alice, { ...rec(1), seq: -1 }), { code: 'PEERPOST_HOME_RECORD' });
  const eight = signHomeRecord(alice, { ...rec(1), peers: Array.from({ length: HOME_PEERS_MAX }, (_, i) => ({ host: `2001:db8:ffff:ffff:ffff:ffff:ffff:${i}`, port: 65535, fingerprint: peerFp })) });
  t.ok(verifyHomeValue(eight, ask).ok, `${HOME_PEERS_MAX} IPv6 peers fit (${eight.length} bytes)`);
});
