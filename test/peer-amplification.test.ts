/**
 * The amplification rule: to an address that has not shown a valid cookie, a peer sends at most
 * as many bytes as it received. Every request type an unvalidated (possibly spoofed) source can
 * send is measured here, the ratios are printed, and no per-source state may be left behind.
 */
import t from 'tap';
import fc from 'fast-check';
import { MsgType, encode } from '../src/protocol/index.js';
import type { Message } from '../src/protocol/index.js';
import { PEER_ADDR, identityNo, makeWorld } from './helpers/link.js';

const VICTIM = { host: '192.0.2.77', port: 4444 };

async function requests(): Promise<Array<[string, Uint8Array]>> {
  const cert = (await identityNo(1)).cert;
  const nonce = new Uint8Array(16).fill(1);
  const cookie = new Uint8Array(20).fill(2);
  const fp = new Uint8Array(32).fill(3);
  const id = new Uint8Array(16).fill(4);
  const m = (msg: Message): Uint8Array => encode(msg);
  return [
    ['REGISTER padded', m({ type: MsgType.REGISTER, cert, nonce })],
    ['REGISTER unpadded', m({ type: MsgType.REGISTER, cert, nonce, padTo: 0 })],
    ['HELLO padded', m({ type: MsgType.HELLO, nonce })],
    ['HELLO unpadded', m({ type: MsgType.HELLO, nonce, padTo: 0 })],
    ['KEEPALIVE outside a session', m({ type: MsgType.KEEPALIVE, answer: true })],
    ['POLL outside a session', m({ type: MsgType.POLL })],
    ['ACK outside a session', m({ type: MsgType.ACK, ids: [id] })],
    ['DIR_JOIN outside a session', m({ type: MsgType.DIR_JOIN, name: '' })],
    ['SESSION of an unknown session', m({ type: MsgType.SESSION, sessionId: new Uint8Array(8).fill(5), counter: 1, inner: { type: MsgType.POLL }, tag: new Uint8Array(16) })],
    ['DELIVER bad cookie', m({ type: MsgType.DELIVER, cookie, to: fp, id, blob: new Uint8Array(1) })],
    ['CERT_REQUEST bad cookie', m({ type: MsgType.CERT_REQUEST, cookie, fingerprint: fp })],
    ['DIR_LIST bad cookie', m({ type: MsgType.DIR_LIST, cookie, page: 0 })],
    [
      'REGISTER_PROOF bad cookie',
      m({
        type: MsgType.REGISTER_PROOF, cert, nonce, cookie, peerKey: new Uint8Array(32), clientKey: new Uint8Array(32),
        wrappedKey: new Uint8Array(48), sig: new Uint8Array(64),
      }),
    ],
    ['garbage 1 byte', new Uint8Array([0x41])],
    ['garbage 2 bytes', new Uint8Array([2, 99])],
    ['garbage 600 bytes', new Uint8Array(600).fill(0x5a)],
    ['garbage CBOR payload', new Uint8Array([2, MsgType.DELIVER, 0xff, 0x00])],
  ];
}

t.test('bytes out / bytes in <= 1 for every request from an unvalidated source', async (t) => {
  const { link, peer } = await makeWorld(0, { directory: true });
  const rows: string[] = [];
  for (const [name, data] of await requests()) {
    const before = link.sentTo(VICTIM);
    link.inject(VICTIM, PEER_ADDR, data);
    const out = link.sentTo(VICTIM) - before;
    const ratio = out / data.length;
    rows.push(`${name.padEnd(26)} in ${String(data.length).padStart(4)} B  out ${String(out).padStart(4)} B  ratio ${ratio.toFixed(3)}`);
    t.ok(ratio <= 1.0, `${name}: ratio ${ratio.toFixed(3)}`);
  }
  t.comment(`amplification (bytes out / bytes in):\n${rows.join('\n')}`);
  const s = peer.stats();
  t.equal(s.registered, 0, 'no registration');
  t.equal(s.waitingMessages, 0, 'nothing stored');
  t.equal((Reflect.get(peer, 'replay') as { size: number }).size, 0, 'no replay entries for unvalidated proofs');
  t.equal((Reflect.get(peer, 'inFlight') as Map<unknown, unknown>).size, 0);
  t.equal(peer.pollTimeout(), undefined, 'no timer armed by unvalidated sources');
  t.equal(s.drops.unpadded, 2, 'unpadded REGISTER and HELLO dropped');
});

t.test('padding boundary: a REGISTER one byte shorter than the CHALLENGE is not answered', async (t) => {
  const { link } = await makeWorld(0);
  const cert = (await identityNo(1)).cert;
  const nonce = new Uint8Array(16);
  const full = encode({ type: MsgType.REGISTER, cert, nonce });
  link.inject(VICTIM, PEER_ADDR, full);
  const challengeBytes = link.sentTo(VICTIM);
  t.ok(challengeBytes > 0 && challengeBytes <= full.length);
  link.inject(VICTIM, PEER_ADDR, encode({ type: MsgType.REGISTER, cert, nonce, padTo: challengeBytes - 1 }));
  t.equal(link.sentTo(VICTIM), challengeBytes, 'not answered');
  link.inject(VICTIM, PEER_ADDR, encode({ type: MsgType.REGISTER, cert, nonce, padTo: challengeBytes }));
  t.equal(link.sentTo(VICTIM), 2 * challengeBytes, 'answered at exactly the CHALLENGE size');
  // HELLO is answered by a COOKIE (a MAC, no certificate, no signature): 41 bytes.
  link.inject(VICTIM, PEER_ADDR, encode({ type: MsgType.HELLO, nonce, padTo: 40 }));
  t.equal(link.sentTo(VICTIM), 2 * challengeBytes, 'a HELLO one byte shorter than the COOKIE is not answered');
  link.inject(VICTIM, PEER_ADDR, encode({ type: MsgType.HELLO, nonce, padTo: 41 }));
  t.equal(link.sentTo(VICTIM), 2 * challengeBytes + 41, 'answered at exactly the COOKIE size');
});

t.test('RATE_LIMITED answers to unvalidated sources stay within the rule', async (t) => {
  const { link, peer } = await makeWorld(0, { rateLimit: { perSecond: 1, burst: 1, bucketsMax: 4 } });
  const nonce = new Uint8Array(16);
  let bytesIn = 0;
  for (let i = 0; i < 10; i++) {
    const d = encode({ type: MsgType.HELLO, nonce });
    bytesIn += d.length;
    link.inject({ host: '192.0.2.9', port: 1000 + i }, PEER_ADDR, d);
  }
  let out = 0;
  for (let i = 0; i < 10; i++) out += link.sentTo({ host: '192.0.2.9', port: 1000 + i });
  t.ok(out <= bytesIn);
  t.equal(peer.stats().errorsSent.RATE_LIMITED, 9);
  for (let i = 0; i < 100; i++) link.inject({ host: `198.51.100.${i}`, port: 1 }, PEER_ADDR, encode({ type: MsgType.HELLO, nonce }));
  t.equal((Reflect.get(peer, 'limiter') as { size: number }).size, 4, 'buckets stay bounded');
});

t.test('property: any datagram from an unvalidated source gets at most its size back', async (t) => {
  const { link, peer } = await makeWorld(0, { directory: true, rateLimit: null });
  const types = Object.values(MsgType);
  let worst = 0;
  fc.assert(
    fc.property(fc.constantFrom(...types), fc.uint8Array({ maxLength: 1198 }), fc.nat(65535), (type, body, port) => {
      const from = { host: '203.0.113.5', port: port + 1 };
      const data = new Uint8Array(2 + body.length);
      data.set([2, type]);
      data.set(body, 2);
      const before = link.sentTo(from);
      link.inject(from, PEER_ADDR, data);
      const out = link.sentTo(from) - before;
      worst = Math.max(worst, out / data.length);
      return out <= data.length;
    }),
    { numRuns: 3000, seed: 42 },
  );
  t.comment(`worst ratio over random datagrams: ${worst.toFixed(3)}`);
  t.equal(peer.stats().registered, 0);
  t.equal(peer.stats().waitingMessages, 0);
});
