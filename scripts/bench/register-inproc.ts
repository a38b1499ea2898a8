/**
 * Registrations through Peer.handle() in this process, no sockets: the peer's own cost per full
 * registration (REGISTER answered with a signed CHALLENGE, then REGISTER_PROOF checked), with
 * the client's proof signature made outside the timed calls.
 */
import { randomBytes } from 'node:crypto';
import { LABEL_REGISTER, MsgType } from '../../src/protocol/constants.js';
import { decode, encode } from '../../src/protocol/codec.js';
import { generateIdentity, signWith } from '../../src/identity/certificate.js';
import { Peer } from '../../src/peer/peer.js';
import { certAt, privateKeyAt, type CertSet } from './certs.js';

const LABEL_REGISTER_BYTES = Buffer.from(LABEL_REGISTER, 'ascii');

/** Registrations per second of peer CPU: `count` certificates from `first`, then the same again. */
export async function registerInProcess(certs: CertSet, first: number, count: number): Promise<{ firstPerS: number; againPerS: number }> {
  const identity = await generateIdentity({ commonName: 'bench-peer' });
  const now = Date.now();
  const peer = new Peer({ identity, random: (n) => new Uint8Array(randomBytes(n)), rateLimit: null }, now);
  const keys = Array.from({ length: count }, (_, i) => privateKeyAt(certs, first + i));
  const pass = (): number => {
    let peerMs = 0;
    for (let i = 0; i < count; i++) {
      const cert = certAt(certs, first + i);
      const from = { host: '10.0.0.1', port: 1 + (i % 60000) };
      const nonce = randomBytes(16);
      const reg = encode({ type: MsgType.REGISTER, cert, nonce });
      let t = performance.now();
      peer.handle(now, from, reg);
      const ch = peer.pollTransmit();
      peerMs += performance.now() - t;
      const r = ch && decode(ch.data);
      if (!r || !r.ok || r.msg.type !== MsgType.CHALLENGE) throw new Error('no CHALLENGE');
      const cookie = r.msg.cookie;
      const sig = signWith(keys[i]!, Buffer.concat([LABEL_REGISTER_BYTES, cookie, peer.fingerprint, nonce]));
      const proof = encode({ type: MsgType.REGISTER_PROOF, cert, nonce, cookie, sig });
      t = performance.now();
      peer.handle(now, from, proof);
      const ok = peer.pollTransmit();
      peerMs += performance.now() - t;
      const o = ok && decode(ok.data);
      if (!o || !o.ok || o.msg.type !== MsgType.OK) throw new Error('registration refused');
      while (peer.pollTransmit());
    }
    return Math.round((count * 1000) / peerMs);
  };
  const firstPerS = pass();
  const againPerS = pass();
  return { firstPerS, againPerS };
}
