/**
 * Registrations through Peer.handle() in this process, no sockets: the peer's own cost per full
 * registration (REGISTER answered with a CHALLENGE whose handshake key is signed once per epoch,
 * then REGISTER_PROOF checked: signature, X25519, session keys, delivery key), with the client's
 * side (its X25519 key, proof and signature) made outside the timed calls. The proof-rate bucket
 * is off: this measures what one core can do, not the peer's default admission rate.
 */
import { randomBytes } from 'node:crypto';
import { MsgType } from '../../src/protocol/constants.js';
import { decode, encode } from '../../src/protocol/codec.js';
import { generateIdentity } from '../../src/identity/certificate.js';
import { isRegistrationOk, proveRegistration } from './endpoint.js';
import { Peer } from '../../src/peer/peer.js';
import { certAt, privateKeyAt, type CertSet } from './certs.js';
import { cpuMs } from './cpu-time.js';

/** Registrations per second of peer CPU: `count` certificates from `first`, then the same again. */
export async function registerInProcess(certs: CertSet, first: number, count: number): Promise<{ firstPerS: number; againPerS: number }> {
  const identity = await generateIdentity({ commonName: 'bench-peer' });
  const now = Date.now();
  const peer = new Peer({ identity, random: (n) => new Uint8Array(randomBytes(n)), rateLimit: null, proofRate: null, newIdentityRate: null }, now);
  const deliveryKey = new Uint8Array(randomBytes(32));
  const keys = Array.from({ length: count }, (_, i) => privateKeyAt(certs, first + i));
  const pass = (): number => {
    let peerMs = 0;
    for (let i = 0; i < count; i++) {
      const cert = certAt(certs, first + i);
      const from = { host: '10.0.0.1', port: 1 + (i % 60000) };
      const nonce = randomBytes(16);
      const reg = encode({ type: MsgType.REGISTER, cert, nonce });
      let t = cpuMs();
      peer.handle(now, from, reg);
      const ch = peer.pollTransmit();
      peerMs += cpuMs() - t;
      const r = ch && decode(ch.data);
      if (!r || !r.ok || r.msg.type !== MsgType.CHALLENGE) throw new Error('no CHALLENGE');
      const made = proveRegistration(cert, keys[i]!, nonce, r.msg, deliveryKey);
      const proof = made.proof;
      t = cpuMs();
      peer.handle(now, from, proof);
      const ok = peer.pollTransmit();
      peerMs += cpuMs() - t;
      const o = ok && decode(ok.data);
      if (!o || !o.ok || !isRegistrationOk(o.msg, made.reg.keys)) throw new Error('registration refused');
      while (peer.pollTransmit());
    }
    return Math.round((count * 1000) / peerMs);
  };
  const firstPerS = pass();
  const againPerS = pass();
  return { firstPerS, againPerS };
}
