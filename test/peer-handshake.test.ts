/**
 * Registration with a peer over the in-memory link: the full handshake, the hijack and spoofing
 * attempts the cookie and the proof must stop, moves, expiry and REGISTER_AGAIN.
 */
import t from 'tap';
import { MsgType, WireError, decode, encode } from '../src/protocol/index.js';
import type { RegisterProofMsg } from '../src/protocol/index.js';
import { registerSigned } from '../src/crypto/session.js';
import { Identity, generateIdentity, toHex } from '../src/identity/certificate.js';
import { readCertificateDer } from '../src/identity/cert-der.js';
import { PEER_ADDR, clientAddr, identityNo, makeWorld, type World } from './helpers/link.js';
import type { Addr } from '../src/core/types.js';
import { RawClient } from './helpers/raw-client.js';

function proofOf(c: RawClient): RegisterProofMsg {
  const r = decode(c.lastProof!);
  if (!r.ok || r.msg.type !== MsgType.REGISTER_PROOF) throw new Error('no proof');
  return r.msg;
}

/** One DER element (definite length, short or long form). */
function tlv(tag: number, ...parts: Uint8Array[]): Buffer {
  const body = Buffer.concat(parts);
  const n = body.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...len]), body]);
}

/** The proof's signature by `id` (for the peer `peerFp`, default the one it names). */
function signProof(id: Identity, p: RegisterProofMsg, peerFp: Uint8Array, cookie = p.cookie): Uint8Array {
  return id.sign(registerSigned({ cookie, peerFingerprint: peerFp, nonce: p.nonce, peerKey: p.peerKey, clientKey: p.clientKey, wrappedKey: p.wrappedKey }));
}

/** A's REGISTER_PROOF held back (not delivered), for tests that send a changed copy. */
function heldProof(link: World['link'], a: RawClient): RegisterProofMsg {
  link.filter = (d) => d.data[1] !== MsgType.REGISTER_PROOF;
  a.register(PEER_ADDR);
  link.flush();
  link.filter = undefined;
  return proofOf(a);
}

function lastErrorCode(c: RawClient): number | undefined {
  return c.errors.at(-1)?.code;
}

t.test('full handshake: REGISTER, signed CHALLENGE, REGISTER_PROOF, OK in the new session', async (t) => {
  const { link, peer, clients } = await makeWorld(1);
  const [a] = clients as [RawClient];
  link.record = true;
  a.register(PEER_ADDR);
  link.flush();
  t.ok(a.registered, 'client got OK');
  t.notOk(a.badChallenge, 'challenge signature verified with the peer certificate');
  t.equal(toHex(a.peerFingerprints.get('10.0.0.1:7777')!), toHex(peer.fingerprint), 'peer fingerprint pinned');
  t.equal(peer.stats().registered, 1);
  t.same(link.recorded.map((d) => d.data[1]), [MsgType.REGISTER, MsgType.CHALLENGE, MsgType.REGISTER_PROOF, MsgType.SESSION]);
  t.same(a.oks, [a.session!.nonce], 'the OK names the proof it answers (its nonce)');
  t.equal(link.recorded[0]!.data.length, 1200, 'REGISTER is padded');
  t.ok(link.recorded[1]!.data.length <= 1200, 'CHALLENGE no longer than the REGISTER');
  t.equal(peer.pollTimeout(), link.now + 90_000, 'registration expiry is the only deadline');
});

t.test('a REGISTER_PROOF sent again (its OK was lost) gets the same OK; an old one gets REPLAY', async (t) => {
  const { link, peer, clients } = await makeWorld(1);
  const [a] = clients as [RawClient];
  link.record = true;
  link.filter = (d) => !(d.data[1] === MsgType.SESSION && d.to.port === clientAddr(0).port); // the OK is lost
  a.register(PEER_ADDR);
  link.flush();
  link.filter = undefined;
  t.notOk(a.registered);
  const firstOk = link.recorded.find((d) => d.data[1] === MsgType.SESSION)!.data;
  const first = a.lastProof!;
  link.inject(clientAddr(0), PEER_ADDR, first);
  t.ok(a.registered, 'the proof again is answered OK, not REPLAY');
  t.equal(a.errors.length, 0);
  const again = link.recorded.filter((d) => d.data[1] === MsgType.SESSION).at(-1)!.data;
  t.same(again, firstOk, 'the very same OK');
  t.equal(peer.stats().registered, 1);
  // A newer registration replaces that session: the first proof is then a replay.
  a.register(PEER_ADDR);
  link.flush();
  link.inject(clientAddr(0), PEER_ADDR, first);
  t.equal(lastErrorCode(a), WireError.REPLAY);
});

t.test('replayMax: at the bound a new registration gets RATE_LIMITED, and passes once the cookie window has moved on', async (t) => {
  const { link, peer, clients } = await makeWorld(3, { replayMax: 2 });
  const [a, b, c] = clients as [RawClient, RawClient, RawClient];
  a.register(PEER_ADDR);
  b.register(PEER_ADDR);
  link.flush();
  t.ok(a.registered && b.registered);
  c.register(PEER_ADDR);
  link.flush();
  t.notOk(c.registered, 'the third proof finds the guard full');
  t.equal(lastErrorCode(c), WireError.RATE_LIMITED);
  t.match(c.errors.at(-1)!.detail, /too many registrations/);
  const oldProof = a.lastProof!;
  a.register(PEER_ADDR);
  link.flush();
  t.equal(lastErrorCode(a), WireError.RATE_LIMITED, 'a new proof of A finds the guard full too');
  link.inject(clientAddr(0), PEER_ADDR, oldProof);
  t.equal(a.errors.length, 1, 'its standing proof sent again is answered with its OK (idempotent), not refused');
  link.advance(2 * 120_000);
  c.register(PEER_ADDR);
  link.flush();
  t.ok(c.registered, 'two cookie epochs later the old proofs are dropped');
  t.equal(peer.stats().registered, 1, 'a and b expired meanwhile (no keepalives)');
});

t.test('a REGISTER_PROOF replayed from another address fails the cookie check', async (t) => {
  const { link, peer, clients } = await makeWorld(2);
  const [a, b] = clients as [RawClient, RawClient];
  a.register(PEER_ADDR);
  link.flush();
  link.inject(clientAddr(1), PEER_ADDR, a.lastProof!);
  t.equal(lastErrorCode(b), WireError.BAD_COOKIE);
  t.equal(b.errors.at(-1)!.detail, '', 'no detail to an unvalidated address');
  // An address is no credential: a keepalive from B's address outside a session is dropped.
  b.send(PEER_ADDR, { type: MsgType.KEEPALIVE, answer: true });
  link.flush();
  t.equal(b.inbox.filter((r) => r.msg.type !== MsgType.ERROR).length, 0, 'not answered');
  t.equal(peer.stats().drops.not_in_session, 1);
  a.keepalive();
  link.flush();
  t.equal(a.registerAgainCount, 0);
  t.equal(a.oks.length, 2, 'the registration and the keepalive answered in the session');
  t.equal(peer.stats().registered, 1);
});

t.test('a proof with a cookie older than two epochs is refused', async (t) => {
  const { link, peer, clients } = await makeWorld(1, {}, 1_800_000_000_000);
  const [a] = clients as [RawClient];
  link.filter = (d) => d.data[1] !== MsgType.REGISTER_PROOF; // hold the proof back
  a.register(PEER_ADDR);
  link.flush();
  link.filter = undefined;
  link.advance(240_000);
  link.inject(clientAddr(0), PEER_ADDR, a.lastProof!);
  t.equal(lastErrorCode(a), WireError.BAD_COOKIE);
  t.equal(peer.stats().registered, 0);
});

t.test('a proof with a cookie one epoch old is still accepted', async (t) => {
  const { link, peer, clients } = await makeWorld(1, {}, 1_800_000_000_000);
  const [a] = clients as [RawClient];
  link.filter = (d) => d.data[1] !== MsgType.REGISTER_PROOF;
  a.register(PEER_ADDR);
  link.flush();
  link.filter = undefined;
  link.advance(120_000 + 119_000);
  link.inject(clientAddr(0), PEER_ADDR, a.lastProof!);
  t.ok(a.registered);
  t.equal(peer.stats().registered, 1);
});

t.test('forged cookies are refused even with a valid signature over them', async (t) => {
  const { link, peer, clients } = await makeWorld(1);
  const [a] = clients as [RawClient];
  link.filter = (d) => d.data[1] !== MsgType.REGISTER_PROOF;
  a.register(PEER_ADDR);
  link.flush();
  link.filter = undefined;
  const p = proofOf(a);
  const forgeries = [new Uint8Array(p.cookie), new Uint8Array(20), new Uint8Array(p.cookie)];
  forgeries[0]![19]! ^= 1; // MAC bit flipped
  forgeries[2]!.set([0xff, 0xff, 0xff, 0xff]); // epoch far in the future
  for (const cookie of forgeries) {
    const sig = signProof(a.identity, p, peer.fingerprint, cookie);
    link.inject(clientAddr(0), PEER_ADDR, encode({ ...p, cookie, sig }));
    t.equal(lastErrorCode(a), WireError.BAD_COOKIE);
  }
  t.equal(peer.stats().errorsSent.BAD_COOKIE, 3);
  t.equal(peer.stats().registered, 0);
});

t.test('a proof signed by a key that is not the certificate key: BAD_SIGNATURE', async (t) => {
  const { link, peer, clients } = await makeWorld(1);
  const [a] = clients as [RawClient];
  const other = await identityNo(9);
  link.filter = (d) => d.data[1] !== MsgType.REGISTER_PROOF;
  a.register(PEER_ADDR);
  link.flush();
  link.filter = undefined;
  const p = proofOf(a);
  const sig = signProof(other, p, peer.fingerprint);
  link.inject(clientAddr(0), PEER_ADDR, encode({ ...p, sig }));
  t.equal(lastErrorCode(a), WireError.BAD_SIGNATURE);
  // A signature for another peer (wrong peer fingerprint in the signed text) fails the same way.
  const sig2 = signProof(a.identity, p, new Uint8Array(32));
  link.inject(clientAddr(0), PEER_ADDR, encode({ ...p, sig: sig2 }));
  t.equal(lastErrorCode(a), WireError.BAD_SIGNATURE);
  t.equal(peer.stats().registered, 0);
});

t.test("someone else's certificate cannot be registered without its key", async (t) => {
  const { link, peer, clients } = await makeWorld(2);
  const [victim, attacker] = clients as [RawClient, RawClient];
  // The attacker gets a valid cookie and handshake key for its own address, then presents the
  // victim's certificate with a proof signed by its own key.
  const p = heldProof(link, attacker);
  attacker.send(PEER_ADDR, { ...p, cert: victim.identity.cert, sig: signProof(attacker.identity, p, peer.fingerprint) });
  link.flush();
  t.equal(lastErrorCode(attacker), WireError.BAD_SIGNATURE);
  t.equal(peer.stats().registered, 0);
});

t.test('a certificate that does not parse: BAD_CERT with a reason', async (t) => {
  const { link, clients } = await makeWorld(1);
  const [a] = clients as [RawClient];
  const p = heldProof(link, a);
  a.send(PEER_ADDR, { ...p, cert: new Uint8Array(150).fill(0x30), sig: new Uint8Array(64) });
  link.flush();
  t.equal(lastErrorCode(a), WireError.BAD_CERT);
  t.match(a.errors.at(-1)!.detail, /^bad_der/);
});

/** A client at `addr` whose certificate has one bit of its self-signature flipped, after it registered. */
async function registeredWithBadSelfSignature(link: World['link'], n: number, addr: Addr): Promise<RawClient> {
  const good = await identityNo(n);
  const badCert = new Uint8Array(good.cert);
  badCert[badCert.length - 1]! ^= 1;
  const bad = new RawClient(new Identity(badCert, good.privateKey));
  link.add(addr, bad);
  bad.register(PEER_ADDR);
  link.flush();
  return bad;
}

t.test('a certificate whose self-signature fails registers (the proof shows the key) but is never served', async (t) => {
  const { link, peer, clients } = await makeWorld(2, { certKeysMax: 1 });
  const [a, b] = clients as [RawClient, RawClient];
  const bad = await registeredWithBadSelfSignature(link, 5, { host: '10.2.0.1', port: 4000 });
  t.ok(bad.registered, 'registered: the proof verifies with the certificate key');
  const cookie = () => b.cookies.get('10.0.0.1:7777')!;
  b.hello(PEER_ADDR);
  link.flush();
  for (const round of ['first request', 'verdict cached', 'after the key left certKeys']) {
    if (round === 'after the key left certKeys') {
      a.register(PEER_ADDR); // certKeysMax 1: A's key takes the only place
      link.flush();
      t.ok(a.registered);
    }
    b.send(PEER_ADDR, { type: MsgType.CERT_REQUEST, cookie: cookie(), fingerprint: bad.fingerprint });
    link.flush();
    t.equal(lastErrorCode(b), WireError.BAD_CERT, round);
    t.same(b.errors.at(-1)!.ref, bad.fingerprint, `${round}: ref is the fingerprint`);
    t.match(b.errors.at(-1)!.detail, /^bad_self_signature: /, round);
  }
  t.notOk(b.lastOf(MsgType.CERT), 'never served');
  b.send(PEER_ADDR, { type: MsgType.CERT_REQUEST, cookie: cookie(), fingerprint: a.fingerprint });
  link.flush();
  t.same(b.lastOf(MsgType.CERT)?.cert, a.identity.cert, 'a self-signed certificate is served');
  t.equal(peer.stats().errorsSent.BAD_CERT, 3);
  t.equal(peer.stats().registered, 2);
});

t.test('a client whose certificate is never served cannot join the directory', async (t) => {
  const { link, peer, clients } = await makeWorld(1, { directory: true });
  const [a] = clients as [RawClient];
  const bad = await registeredWithBadSelfSignature(link, 6, { host: '10.2.0.2', port: 4000 });
  t.ok(bad.registered);
  bad.sendSession({ type: MsgType.DIR_JOIN, name: 'mallory' });
  link.flush();
  t.equal(lastErrorCode(bad), WireError.BAD_CERT);
  t.match(bad.errors.at(-1)!.detail, /^bad_self_signature: /);
  t.equal(bad.errors.at(-1)!.ref.length, 0, 'no ref');
  a.register(PEER_ADDR);
  link.flush();
  t.ok(a.registered);
  a.sendSession({ type: MsgType.DIR_JOIN, name: 'alice' });
  link.flush();
  t.equal(a.errors.length, 0, 'no error');
  t.ok(a.lastOf(MsgType.OK), 'a self-signed certificate joins');
  a.send(PEER_ADDR, { type: MsgType.DIR_LIST, cookie: a.cookies.get('10.0.0.1:7777')!, page: 0 });
  link.flush();
  const page = a.lastOf(MsgType.DIR_PAGE);
  t.same(page?.type === MsgType.DIR_PAGE ? page.entries.map((e) => e.name) : null, ['alice'], 'only alice is listed');
  t.equal(peer.stats().errorsSent.BAD_CERT, 1);
});

t.test('certificates out of their validity period: BAD_CERT, first time and from the checked keys', async (t) => {
  const start = Date.UTC(2030, 0, 1);
  const { link, peer } = await makeWorld(0, {}, start);
  const c = new RawClient(await generateIdentity({ notBefore: new Date(start + 3600_000), validityDays: 1 }));
  link.add(clientAddr(0), c);
  c.register(PEER_ADDR);
  link.flush();
  t.equal(lastErrorCode(c), WireError.BAD_CERT);
  t.match(c.errors.at(-1)!.detail, /^not_yet_valid: certificate is valid only from Tue, 01 Jan 2030 01:00:00 GMT/);
  link.advance(2 * 3600_000);
  c.register(PEER_ADDR);
  link.flush();
  t.ok(c.registered, 'valid now');
  link.advance(86400_000);
  c.register(PEER_ADDR);
  link.flush();
  t.equal(lastErrorCode(c), WireError.BAD_CERT);
  t.match(c.errors.at(-1)!.detail, /^expired: certificate expired on Wed, 02 Jan 2030 01:00:00 GMT/);
  t.equal(peer.stats().errorsSent.BAD_CERT, 2);
});

t.test('a v1 certificate and a cut one: BAD_CERT not_v3 and bad_der with the walk reason', async (t) => {
  const { link, clients } = await makeWorld(1);
  const [a] = clients as [RawClient];
  const p = heldProof(link, a);
  // A v3 certificate with its version field removed and the lengths made right: a v1 certificate.
  const walked = readCertificateDer(a.identity.cert);
  if (!walked.ok) throw new Error('test certificate refused');
  const tbs = Buffer.from(walked.cert.tbs);
  const tbsBody = tbs.subarray(tbs[1]! & 0x80 ? 2 + (tbs[1]! & 0x7f) : 2);
  t.same([...tbsBody.subarray(0, 5)], [0xa0, 0x03, 0x02, 0x01, 0x02], 'version field found');
  const rest = Buffer.from(a.identity.cert).subarray(a.identity.cert.length - (2 + 5 + 2 + 65));
  const v1 = tlv(0x30, tlv(0x30, tbsBody.subarray(5)), rest);
  for (const [cert, re] of [[v1, /^not_v3: not_v3: /], [a.identity.cert.subarray(0, 120), /^bad_der: truncated: /]] as const) {
    a.send(PEER_ADDR, { ...p, cert, sig: new Uint8Array(64) });
    link.flush();
    t.equal(lastErrorCode(a), WireError.BAD_CERT);
    t.match(a.errors.at(-1)!.detail, re);
  }
});

t.test('re-registration from a new address moves the entry', async (t) => {
  const { link, peer, clients } = await makeWorld(2);
  const [a, b] = clients as [RawClient, RawClient];
  a.register(PEER_ADDR);
  link.flush();
  // Same identity, new address (NAT rebinding): a second raw client with A's identity.
  const moved = new RawClient(a.identity);
  const newAddr = { host: '10.9.9.9', port: 5555 };
  link.add(newAddr, moved);
  moved.register(PEER_ADDR);
  link.flush();
  t.ok(moved.registered);
  t.equal(peer.stats().registered, 1);
  a.keepalive();
  link.flush();
  t.equal(a.registerAgainCount, 1, 'old address gets REGISTER_AGAIN on keepalive');
  moved.keepalive();
  link.flush();
  t.equal(moved.registerAgainCount, 0);
  // Messages now go to the new address.
  b.hello(PEER_ADDR);
  link.flush();
  const id = b.deliver(PEER_ADDR, a.fingerprint, new Uint8Array([1, 2, 3]));
  link.flush();
  t.equal(moved.pushes.length, 1);
  t.equal(a.pushes.length, 0);
  t.same(b.resultsOf(id), [200]);
});

t.test('two clients behind one address (a NAT) each keep their own session', async (t) => {
  const { link, peer, clients } = await makeWorld(2);
  const [a, b] = clients as [RawClient, RawClient];
  a.register(PEER_ADDR);
  link.flush();
  const other = new RawClient(b.identity);
  link.add(clientAddr(0), other); // B now sits at A's address
  other.register(PEER_ADDR);
  link.flush();
  t.ok(other.registered);
  t.equal(peer.stats().registered, 2, 'the address is not the key: both registered');
  a.keepalive();
  other.keepalive();
  link.flush();
  t.equal(a.registerAgainCount + other.registerAgainCount, 0, 'both sessions live');
});

t.test('KEEPALIVE refreshes, expiry removes, REGISTER_AGAIN for unknown addresses', async (t) => {
  const { link, peer, clients } = await makeWorld(2, {}, 1_800_000_000_000);
  const [a, b] = clients as [RawClient, RawClient];
  a.register(PEER_ADDR);
  b.register(PEER_ADDR);
  link.flush();
  for (let i = 0; i < 10; i++) {
    link.advance(30_000);
    a.keepalive();
    link.flush();
  }
  t.equal(a.registerAgainCount, 0, 'A kept alive for 300 s');
  t.equal(a.lastOf(MsgType.OK)?.type, MsgType.OK);
  t.equal(peer.stats().registered, 1, 'B expired after 90 s without a keepalive');
  b.keepalive();
  b.poll();
  link.flush();
  t.equal(b.registerAgainCount, 2, 'KEEPALIVE and POLL of a session the peer does not know: REGISTER_AGAIN naming it');
  link.advance(90_000);
  t.equal(peer.stats().registered, 0);
  t.equal(peer.pollTimeout(), undefined, 'nothing left to wait for');
  a.autoReregister = true;
  a.keepalive();
  link.flush();
  t.ok(a.registered, 'client registers again after REGISTER_AGAIN');
});

t.test('REGISTRY_FULL for a new fingerprint; a registered one may re-register', async (t) => {
  const { link, peer, clients } = await makeWorld(3, { registryMax: 2 });
  const [a, b, c] = clients as [RawClient, RawClient, RawClient];
  a.register(PEER_ADDR);
  b.register(PEER_ADDR);
  c.register(PEER_ADDR);
  link.flush();
  t.ok(a.registered && b.registered);
  t.notOk(c.registered);
  t.equal(lastErrorCode(c), WireError.REGISTRY_FULL);
  a.register(PEER_ADDR);
  link.flush();
  t.ok(a.registered, 'already registered fingerprint is not refused');
  t.equal(peer.stats().registered, 2);
  link.advance(90_000);
  c.register(PEER_ADDR);
  link.flush();
  t.ok(c.registered, 'room again after the others expired');
});

t.test('IPv6 clients register and receive pushes', async (t) => {
  const { link, peer, clients } = await makeWorld(1);
  const [a] = clients as [RawClient];
  const v6 = new RawClient(await identityNo(7));
  const v6Addr = { host: '2001:db8::7', port: 9000 };
  link.add(v6Addr, v6);
  v6.register(PEER_ADDR);
  a.hello(PEER_ADDR);
  link.flush();
  t.ok(v6.registered);
  const id = a.deliver(PEER_ADDR, v6.fingerprint, new Uint8Array([5]));
  link.flush();
  t.equal(v6.pushes.length, 1);
  t.same(a.resultsOf(id), [200]);
  t.equal(peer.stats().waitingMessages, 0);
});
