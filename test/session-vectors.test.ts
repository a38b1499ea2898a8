/**
 * The session key schedule and delivery capabilities against test/vectors/session.json (written by
 * scripts/make-session-vectors.ts), recomputed here from node:crypto primitives directly, so the
 * vectors check src/crypto/session.ts rather than repeat it.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { createDecipheriv, createHmac, hkdfSync } from 'node:crypto';
import { blake2b as nobleBlake2b } from '@noble/hashes/blake2.js';
import { capabilityTagOk, deriveSession, sessionTagOk, unwrapDeliveryKey, x25519, x25519KeyPair } from '../src/crypto/session.js';
import { decode } from '../src/protocol/codec.js';
import { MsgType } from '../src/protocol/constants.js';

const v = JSON.parse(readFileSync(new URL('./vectors/session.json', import.meta.url), 'utf8')) as {
  session: Record<string, string>;
  capability: Record<string, string>;
};
const b = (x: string): Buffer => Buffer.from(x, 'hex');
const s = v.session;

t.test('key schedule: X25519, HKDF split, wrapped delivery key', async (t) => {
  const c = x25519KeyPair(b(s.clientSecret!));
  const p = x25519KeyPair(b(s.peerSecret!));
  t.equal(Buffer.from(c.publicKey).toString('hex'), s.clientKey);
  t.equal(Buffer.from(p.publicKey).toString('hex'), s.peerKey);
  t.equal(Buffer.from(x25519(c.privateKey, b(s.peerKey!))!).toString('hex'), s.shared);
  const info = Buffer.concat([Buffer.from('peerpost/2 session'), b(s.clientFingerprint!), b(s.peerFingerprint!), b(s.clientKey!), b(s.peerKey!)]);
  const okm = Buffer.from(hkdfSync('sha256', b(s.shared!), b(s.nonce!), info, 104));
  t.same([okm.subarray(0, 8), okm.subarray(8, 40), okm.subarray(40, 72), okm.subarray(72)].map((x) => x.toString('hex')), [s.sessionId, s.c2p, s.p2c, s.wrap]);
  const k = deriveSession({ shared: b(s.shared!), nonce: b(s.nonce!), clientFingerprint: b(s.clientFingerprint!), peerFingerprint: b(s.peerFingerprint!), clientKey: b(s.clientKey!), peerKey: b(s.peerKey!) });
  t.equal(Buffer.from(k.c2p).toString('hex'), s.c2p);
  const d = createDecipheriv('chacha20-poly1305', b(s.wrap!), Buffer.alloc(12), { authTagLength: 16 });
  d.setAAD(Buffer.from('peerpost/2 delivery-key'), { plaintextLength: 32 });
  d.setAuthTag(b(s.wrappedKey!).subarray(32));
  t.equal(Buffer.concat([d.update(b(s.wrappedKey!).subarray(0, 32)), d.final()]).toString('hex'), s.deliveryKey);
  t.equal(Buffer.from(unwrapDeliveryKey(b(s.wrap!), b(s.wrappedKey!))!).toString('hex'), s.deliveryKey);
  const tampered = b(s.wrappedKey!);
  tampered[0]! ^= 1;
  t.equal(unwrapDeliveryKey(b(s.wrap!), tampered), null, 'a changed wrapped key does not open');
  t.equal(s.registerSigned, Buffer.concat([Buffer.from('peerpost/2 register'), b(s.cookie!), b(s.peerFingerprint!), b(s.nonce!), b(s.peerKey!), b(s.clientKey!), b(s.wrappedKey!)]).toString('hex'));
});

t.test('SESSION datagrams: tag = BLAKE2b-128 keyed with the direction key, over the bytes before it', async (t) => {
  // RFC 7693 appendix A: BLAKE2b-512("abc"), unkeyed, from the second implementation used below.
  t.equal(Buffer.from(nobleBlake2b(new TextEncoder().encode('abc'))).toString('hex').slice(0, 32), 'ba80a53f981c4d0d6a2797b69f12f6e9', 'the checking BLAKE2b is RFC 7693');
  for (const [name, key] of [['registrationOk', s.p2c!], ['keepaliveCounter1', s.c2p!]] as const) {
    const data = b(s[name]!);
    const tag = Buffer.from(nobleBlake2b(data.subarray(0, data.length - 16), { key: b(key), dkLen: 16 }));
    t.equal(data.subarray(data.length - 16).toString('hex'), tag.toString('hex'), name);
    const r = decode(data);
    t.ok(r.ok && r.msg.type === MsgType.SESSION && sessionTagOk(b(key), r.msg), `${name} verifies`);
    t.ok(r.ok && r.msg.type === MsgType.SESSION && !sessionTagOk(b(key === s.c2p ? s.p2c! : s.c2p!), r.msg), `${name} fails under the other direction's key`);
  }
});

t.test('capability: id, key and tag', async (t) => {
  const c = v.capability;
  const capId = createHmac('sha256', b(c.deliveryKey!)).update('peerpost/2 cap-id').update(b(c.contactFingerprint!)).digest().subarray(0, 4);
  t.equal(capId.toString('hex'), c.capId);
  const capKey = createHmac('sha256', b(c.deliveryKey!)).update('peerpost/2 cap-key').update(capId).digest();
  t.equal(capKey.toString('hex'), c.capKey);
  const tag = createHmac('sha256', capKey).update('peerpost/2 cap-tag').update(b(c.to!)).update(b(c.id!)).digest().subarray(0, 12);
  t.equal(c.cap, capId.toString('hex') + tag.toString('hex'));
  t.ok(capabilityTagOk(capKey, b(c.cap!), b(c.to!), b(c.id!)));
  const otherId = b(c.id!);
  otherId[0]! ^= 1;
  t.notOk(capabilityTagOk(capKey, b(c.cap!), b(c.to!), otherId), 'the tag binds the message id');
});

t.test('sealSessionPush writes the same bytes as sealSession around a PUSH', async (t) => {
  const { sealSession, sealSessionPush } = await import('../src/crypto/session.js');
  const key = b(s.p2c!);
  const sid = b(s.sessionId!);
  for (const n of [1, 23, 24, 255, 256, 511, 1100]) {
    for (const counter of [0, 1, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER]) {
      const id = Buffer.alloc(16, n & 0xff);
      const blob = Buffer.alloc(n, (n * 7) & 0xff);
      const a = Buffer.from(sealSession(key, sid, counter, { type: MsgType.PUSH, id, blob }));
      const f = Buffer.from(sealSessionPush(key, sid, counter, id, blob));
      if (!a.equals(f)) t.fail(`blob ${n}, counter ${counter}: they differ`);
    }
  }
  t.pass('7 blob sizes x 4 counters alike');
});
