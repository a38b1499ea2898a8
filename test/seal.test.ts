import t from 'tap';
import { createCipheriv, createHash, createPrivateKey, createPublicKey, diffieHellman, hkdfSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { generateIdentity, Identity, toHex } from '../src/identity/certificate.js';
import { PeerpostError } from '../src/core/errors.js';
import { cborEncode } from '../src/protocol/cbor.js';
import {
  openSealed, seal, verifySender, SEAL_BODY_MAX_BYTES, SEAL_BUCKETS_BYTES, SEAL_FROM_PEER_MAX_BYTES, SEAL_KIND_MAX,
  type Opened, type SealInput,
} from '../src/crypto/seal.js';
import { BoundedLru } from '../src/crypto/lru.js';
import { edPublicToX25519, edSeedToX25519, identityXKeys, rawPublic, x25519PrivateFromRaw, x25519PublicFromRaw } from '../src/crypto/keys.js';

const VECTORS = new URL('./vectors/seal.json', import.meta.url);

/** Deterministic Random: SHA-256(seed || counter) blocks. */
function seeded(seed: string): (n: number) => Uint8Array {
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

function identityFromHex(certHex: string, pkcs8Hex: string): Identity {
  return new Identity(
    new Uint8Array(Buffer.from(certHex, 'hex')),
    createPrivateKey({ key: Buffer.from(pkcs8Hex, 'hex'), format: 'der', type: 'pkcs8' }),
  );
}

function content(random: (n: number) => Uint8Array, bodyBytes: number): SealInput {
  return { kind: 1, id: random(16), sentAtMs: 1_790_000_000_000, body: random(bodyBytes) };
}

const [alice, bob, carol, mallory] = await Promise.all([
  generateIdentity({ commonName: 'alice' }),
  generateIdentity({ commonName: 'bob' }),
  generateIdentity({ commonName: 'carol' }),
  generateIdentity({ commonName: 'mallory' }),
]);
if (!alice || !bob || !carol || !mallory) throw new Error('identities');
const PEER = '192.0.2.10:40000';

t.test('X25519 conversion matches libsodium ed25519_convert known answers', async (t) => {
  // libsodium test/default/ed25519_convert.c: seed -> curve25519 pk / sk.
  const seed = Buffer.from('421151a459faeade3d247115f94aedae42318124095afabe4d1451a559faedee', 'hex');
  const edPriv = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]), format: 'der', type: 'pkcs8' });
  const edPub = rawPublic(createPublicKey(edPriv));
  t.equal(toHex(edPublicToX25519(edPub)), 'f1814f0e8ff1043d8a44d25babff3cedcae6c22c3edaa48f857ae70de2baae50');
  t.equal(toHex(edSeedToX25519(seed)), '8052030376d47112be7f73ed7a019293dd12ad910b654455798b4667d73de166');
  // And node:crypto's X25519 base multiplication of the converted secret gives the converted public key.
  t.equal(toHex(rawPublic(createPublicKey(x25519PrivateFromRaw(edSeedToX25519(seed))))), 'f1814f0e8ff1043d8a44d25babff3cedcae6c22c3edaa48f857ae70de2baae50');
});

t.test('for generated identities the converted secret and public key agree', async (t) => {
  for (const id of [alice, bob, carol, mallory]) {
    const x = identityXKeys(id);
    t.equal(toHex(rawPublic(createPublicKey(x.xPrivate))), toHex(x.xPublicRaw));
    t.equal(toHex(x.xPublicRaw), toHex(edPublicToX25519(rawPublic(id.publicKey))));
  }
});

t.test('round trip for every body size 0..SEAL_BODY_MAX_BYTES, sizes fall into the buckets', async (t) => {
  t.equal(SEAL_BODY_MAX_BYTES, 851);
  const random = seeded('sizes');
  const seen = new Set<number>();
  let failures = 0;
  for (let n = 0; n <= SEAL_BODY_MAX_BYTES; n++) {
    const c = content(random, n);
    const blob = seal({ sender: alice, senderPeer: PEER, recipientCert: bob.cert, content: c, random });
    seen.add(blob.length);
    const r = openSealed(bob, blob);
    const good = r.ok && r.opened.kind === 1 && r.opened.fromPeer === PEER && r.opened.fromHex === alice.fingerprintHex
      && Buffer.from(r.opened.body).equals(c.body) && Buffer.from(r.opened.id).equals(c.id) && r.opened.sentAtMs === c.sentAtMs
      && verifySender(r.opened, alice.cert, bob.fingerprint);
    if (!good) failures++;
  }
  t.equal(failures, 0);
  t.same([...seen].sort((a, b) => a - b), [...SEAL_BUCKETS_BYTES]);
});

t.test('the largest body fits with the longest fields; one byte more is refused', async (t) => {
  const random = seeded('max');
  const longPeer = `${'a'.repeat(SEAL_FROM_PEER_MAX_BYTES - 6)}:65535`;
  t.equal(Buffer.byteLength(longPeer), SEAL_FROM_PEER_MAX_BYTES);
  const c = { kind: SEAL_KIND_MAX, id: random(16), sentAtMs: Number.MAX_SAFE_INTEGER, body: random(SEAL_BODY_MAX_BYTES) };
  const blob = seal({ sender: alice, senderPeer: longPeer, recipientCert: bob.cert, content: c, random });
  t.equal(blob.length, 1100);
  const r = openSealed(bob, blob);
  t.ok(r.ok && verifySender(r.opened, alice.cert, bob.fingerprint) && r.opened.sentAtMs === Number.MAX_SAFE_INTEGER);
  t.throws(
    () => seal({ sender: alice, senderPeer: longPeer, recipientCert: bob.cert, content: { ...c, body: random(SEAL_BODY_MAX_BYTES + 1) }, random }),
    { code: 'PEERPOST_SEAL_TOO_LARGE' },
  );
});

t.test('misuse throws PeerpostError with a stable code', async (t) => {
  const random = seeded('misuse');
  const c = content(random, 10);
  const go = (over: Partial<Parameters<typeof seal>[0]>) => () => seal({ sender: alice, senderPeer: PEER, recipientCert: bob.cert, content: c, random, ...over });
  t.throws(go({ recipientCert: new Uint8Array(300) }), { code: 'PEERPOST_BAD_CERT' });
  const tampered = new Uint8Array(bob.cert);
  tampered[tampered.length - 1]! ^= 1;
  t.throws(go({ recipientCert: tampered }), { code: 'PEERPOST_BAD_CERT' });
  t.throws(go({ senderPeer: 'not an address' }), { code: 'PEERPOST_SEAL_BAD_INPUT' });
  t.throws(go({ senderPeer: `${'a'.repeat(SEAL_FROM_PEER_MAX_BYTES)}:1` }), { code: 'PEERPOST_SEAL_BAD_INPUT' });
  t.throws(go({ content: { ...c, id: new Uint8Array(15) } }), { code: 'PEERPOST_SEAL_BAD_INPUT' });
  t.throws(go({ content: { ...c, kind: SEAL_KIND_MAX + 1 } }), { code: 'PEERPOST_SEAL_BAD_INPUT' });
  t.throws(go({ content: { ...c, sentAtMs: -1 } }), { code: 'PEERPOST_SEAL_BAD_INPUT' });
  t.throws(go({ random: () => new Uint8Array(31) }), { code: 'PEERPOST_SEAL_BAD_INPUT' });
  try {
    go({ recipientCert: new Uint8Array(3) })();
  } catch (e) {
    t.ok(e instanceof PeerpostError);
  }
});

t.test('any flipped bit makes the blob fail to open', async (t) => {
  const random = seeded('tamper');
  for (const bodyBytes of [20, 300]) {
    const blob = seal({ sender: alice, senderPeer: PEER, recipientCert: bob.cert, content: content(random, bodyBytes), random });
    let opened = 0;
    const reasons = new Set<string>();
    for (let i = 0; i < blob.length; i++) {
      const bad = new Uint8Array(blob);
      bad[i]! ^= 1 << (i % 8);
      const r = openSealed(bob, bad);
      if (r.ok) opened++;
      else reasons.add(r.reason);
    }
    t.equal(opened, 0, `blob of ${blob.length} bytes`);
    t.ok(reasons.has('decrypt_failed') && reasons.has('bad_version'));
  }
});

t.test('a blob for another recipient does not open', async (t) => {
  const random = seeded('other');
  const blob = seal({ sender: alice, senderPeer: PEER, recipientCert: bob.cert, content: content(random, 40), random });
  t.same(openSealed(carol, blob), { ok: false, reason: 'decrypt_failed' });
  t.ok(openSealed(bob, blob).ok);
});

t.test('hostile blobs are refused with reasons, never a throw', async (t) => {
  const random = seeded('hostile');
  t.same(openSealed(bob, new Uint8Array(0)), { ok: false, reason: 'too_short' });
  t.same(openSealed(bob, new Uint8Array(255)), { ok: false, reason: 'too_short' });
  t.same(openSealed(bob, new Uint8Array(257)), { ok: false, reason: 'bad_bucket' });
  t.same(openSealed(bob, 'x' as unknown as Uint8Array), { ok: false, reason: 'too_short' });
  const zeroKey = new Uint8Array(256);
  zeroKey[0] = 1; // ephemeral key all zero: a small-order point
  t.same(openSealed(bob, zeroKey), { ok: false, reason: 'bad_ephemeral' });
  for (const size of SEAL_BUCKETS_BYTES) {
    const junk = random(size);
    junk[0] = 1;
    const r = openSealed(bob, junk);
    t.notOk(r.ok);
  }
});

/** An attacker's own implementation of the blob format (docs/PROTOCOL.md), to splice and re-seal. */
function sealRawInner(recipient: Identity, inner: Uint8Array, secret: Uint8Array, bucket: number): Uint8Array {
  const eph = x25519PrivateFromRaw(secret);
  const ephPub = rawPublic(createPublicKey(eph));
  const rx = edPublicToX25519(rawPublic(recipient.publicKey));
  const shared = diffieHellman({ privateKey: eph, publicKey: x25519PublicFromRaw(rx) });
  const okm = Buffer.from(hkdfSync('sha256', shared, Buffer.concat([ephPub, rx]), Buffer.concat([Buffer.from('peerpost/1 seal'), recipient.fingerprint]), 44));
  const pt = Buffer.alloc(bucket - 49);
  pt.writeUInt16BE(inner.length, 0);
  pt.set(inner, 2);
  const header = Buffer.concat([Uint8Array.of(1), ephPub]);
  const c = createCipheriv('chacha20-poly1305', okm.subarray(0, 32), okm.subarray(32), { authTagLength: 16 });
  c.setAAD(header, { plaintextLength: pt.length });
  return new Uint8Array(Buffer.concat([header, c.update(pt), c.final(), c.getAuthTag()]));
}

function innerOf(o: Opened): Uint8Array {
  return new Uint8Array(Buffer.concat([Uint8Array.of(0x87), o.signedFields.subarray(1), cborEncode(o.signature)]));
}

t.test('a forged sender fails verifySender', async (t) => {
  const random = seeded('forge');
  // Mallory claims to be Alice: Alice's certificate (so from = Alice's fingerprint) but Mallory's key.
  const fake = new Identity(alice.cert, mallory.privateKey);
  const blob = seal({ sender: fake, senderPeer: PEER, recipientCert: bob.cert, content: content(random, 30), random });
  const r = openSealed(bob, blob);
  t.ok(r.ok);
  if (!r.ok) return;
  t.equal(r.opened.fromHex, alice.fingerprintHex);
  t.notOk(verifySender(r.opened, alice.cert, bob.fingerprint), 'signature is not by Alice');
  t.notOk(verifySender(r.opened, mallory.cert, bob.fingerprint), 'Mallory\'s certificate is not the claimed sender');
  t.notOk(verifySender(r.opened, new Uint8Array(10), bob.fingerprint));
  t.notOk(verifySender(r.opened, alice.cert, new Uint8Array(5)));
});

t.test('re-sealing an opened message to another recipient fails verifySender', async (t) => {
  const random = seeded('reseal');
  const blob = seal({ sender: alice, senderPeer: PEER, recipientCert: bob.cert, content: content(random, 30), random });
  const r = openSealed(bob, blob);
  t.ok(r.ok && verifySender(r.opened, alice.cert, bob.fingerprint));
  if (!r.ok) return;
  // Bob forwards Alice's signed content to Carol as if Alice had sent it to her.
  const resealed = sealRawInner(carol, innerOf(r.opened), random(32), 256);
  const rc = openSealed(carol, resealed);
  t.ok(rc.ok, 'the attacker-built blob is well formed');
  if (!rc.ok) return;
  t.equal(rc.opened.fromHex, alice.fingerprintHex);
  t.notOk(verifySender(rc.opened, alice.cert, carol.fingerprint));
  // Even re-sealed to Bob himself under a new ephemeral key, the signature no longer binds.
  const again = openSealed(bob, sealRawInner(bob, innerOf(r.opened), random(32), 256));
  t.ok(again.ok && !verifySender(again.opened, alice.cert, bob.fingerprint));
  // The independent implementation is a faithful one: with the original key it verifies.
  t.ok(verifySender(r.opened, alice.cert, bob.fingerprint));
});

t.test('output is deterministic for a fixed Random and matches the known-answer vector', async (t) => {
  if (process.env.PEERPOST_WRITE_VECTORS === '1') await writeVector();
  const v = JSON.parse(readFileSync(VECTORS, 'utf8')) as {
    sender: { cert: string; pkcs8: string }; recipient: { cert: string; pkcs8: string };
    senderPeer: string; content: { kind: number; id: string; sentAtMs: number; body: string };
    ephemeralSecret: string; ephemeralPublic: string; blob: string;
  };
  const sender = identityFromHex(v.sender.cert, v.sender.pkcs8);
  const recipient = identityFromHex(v.recipient.cert, v.recipient.pkcs8);
  const c = { kind: v.content.kind, id: Buffer.from(v.content.id, 'hex'), sentAtMs: v.content.sentAtMs, body: Buffer.from(v.content.body, 'hex') };
  const fixed = () => new Uint8Array(Buffer.from(v.ephemeralSecret, 'hex'));
  const a = seal({ sender, senderPeer: v.senderPeer, recipientCert: recipient.cert, content: c, random: fixed });
  const b = seal({ sender, senderPeer: v.senderPeer, recipientCert: recipient.cert, content: c, random: fixed });
  t.equal(toHex(a), toHex(b));
  t.equal(toHex(a), v.blob);
  t.equal(toHex(a.subarray(1, 33)), v.ephemeralPublic);
  // The attacker-side implementation of the format produces the same bytes.
  const r = openSealed(recipient, Buffer.from(v.blob, 'hex'));
  t.ok(r.ok && verifySender(r.opened, sender.cert, recipient.fingerprint));
  if (r.ok) t.equal(toHex(sealRawInner(recipient, innerOf(r.opened), fixed(), a.length)), v.blob);
});

async function writeVector(): Promise<void> {
  const [s, r] = [await generateIdentity({ commonName: 'vector-sender' }), await generateIdentity({ commonName: 'vector-recipient' })];
  const pk = (id: Identity) => toHex(id.privateKey.export({ format: 'der', type: 'pkcs8' }));
  const secret = seeded('vector')(32);
  const c = { kind: 1, id: seeded('vector-id')(16), sentAtMs: 1_790_000_000_000, body: new TextEncoder().encode('hello, peerpost') };
  const senderPeer = '198.51.100.7:4747';
  const blob = seal({ sender: s, senderPeer, recipientCert: r.cert, content: c, random: () => secret });
  const out = {
    description: 'seal() known answer: sender/recipient certificates (DER hex) and PKCS#8 Ed25519 keys, content, ephemeral X25519 secret, expected blob',
    sender: { cert: toHex(s.cert), pkcs8: pk(s), fingerprint: s.fingerprintHex },
    recipient: { cert: toHex(r.cert), pkcs8: pk(r), fingerprint: r.fingerprintHex },
    senderPeer,
    content: { kind: c.kind, id: toHex(c.id), sentAtMs: c.sentAtMs, body: toHex(c.body) },
    ephemeralSecret: toHex(secret),
    ephemeralPublic: toHex(blob.subarray(1, 33)),
    blob: toHex(blob),
  };
  writeFileSync(VECTORS, `${JSON.stringify(out, null, 2)}\n`);
}

t.test('the key cache is bounded', async (t) => {
  const lru = new BoundedLru<number, number>(3);
  for (let i = 0; i < 10; i++) lru.set(i, i);
  t.equal(lru.size, 3);
  t.equal(lru.get(6), undefined);
  t.equal(lru.get(7), 7);
  lru.set(10, 10);
  t.equal(lru.get(8), undefined, 'least recently used goes first');
  t.equal(lru.get(7), 7);
  t.throws(() => new BoundedLru(0));
});
