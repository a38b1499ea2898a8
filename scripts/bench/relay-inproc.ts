/**
 * Relay through Peer.handle() in this process, no sockets: the peer's own CPU per relayed message
 * (DELIVER in, PUSH out in the recipient's session, ACK in the session, RESULT 200 out), with
 * `senders` senders and `recipients` registered recipients. Every DELIVER carries the capability
 * the recipient handed its sender (an honest contact's message), every ACK a new counter and the
 * session MAC. The datagrams are made before the timed loop, so only the peer's work is timed.
 */
import { randomBytes } from 'node:crypto';
import { MsgType } from '../../src/protocol/constants.js';
import { decode, encode } from '../../src/protocol/codec.js';
import { generateIdentity } from '../../src/identity/certificate.js';
import { capabilityField, capabilityId, capabilityKey, sealSession } from '../../src/crypto/session.js';
import { Peer } from '../../src/peer/peer.js';
import type { Addr } from '../../src/core/types.js';
import { certAt, privateKeyAt, type CertSet } from './certs.js';
import { cpuMs } from './cpu-time.js';
import { isRegistrationOk, proveRegistration, type Registered } from './endpoint.js';

function exchange(peer: Peer, now: number, from: Addr, data: Uint8Array) {
  peer.handle(now, from, data);
  const t = peer.pollTransmit();
  while (peer.pollTransmit());
  const r = t && decode(t.data);
  if (!r || !r.ok) throw new Error('no answer');
  return r.msg;
}

/** Messages per second of peer CPU over `count` messages with blobs of `blobBytes`. */
export async function relayInProcess(certs: CertSet, first: number, blobBytes: number, count: number, senders = 16, recipients = 16): Promise<{ perS: number; usPerMessage: number }> {
  const identity = await generateIdentity({ commonName: 'bench-peer' });
  const now = Date.now();
  const peer = new Peer({ identity, random: (n) => new Uint8Array(randomBytes(n)), rateLimit: null, proofRate: null, newIdentityRate: null }, now);
  const rcpt: Array<{ addr: Addr; reg: Registered; tx: number }> = [];
  for (let i = 0; i < recipients; i++) {
    const cert = certAt(certs, first + i);
    const addr = { host: '10.1.0.1', port: 1000 + i };
    const nonce = randomBytes(16);
    const ch = exchange(peer, now, addr, encode({ type: MsgType.REGISTER, cert, nonce }));
    if (ch.type !== MsgType.CHALLENGE) throw new Error('no CHALLENGE');
    const made = proveRegistration(cert, privateKeyAt(certs, first + i), nonce, ch, new Uint8Array(randomBytes(32)));
    if (!isRegistrationOk(exchange(peer, now, addr, made.proof), made.reg.keys)) throw new Error('registration refused');
    rcpt.push({ addr, reg: made.reg, tx: 0 });
  }
  const snd: Array<{ addr: Addr; cookie: Uint8Array; caps: Array<{ capId: Uint8Array; capKey: Uint8Array }> }> = [];
  for (let i = 0; i < senders; i++) {
    const addr = { host: '10.2.0.1', port: 2000 + i };
    const ch = exchange(peer, now, addr, encode({ type: MsgType.HELLO, nonce: randomBytes(16) }));
    if (ch.type !== MsgType.COOKIE) throw new Error('no COOKIE');
    // The capability each recipient's client handed this sender (a contact of every recipient).
    const fp = new Uint8Array(randomBytes(32));
    const caps = rcpt.map((r) => {
      const capId = capabilityId(r.reg.deliveryKey, fp);
      return { capId, capKey: capabilityKey(r.reg.deliveryKey, capId) };
    });
    snd.push({ addr, cookie: ch.cookie, caps });
  }
  const blob = randomBytes(blobBytes);
  const batch = 4096;
  const delivers: Uint8Array[] = [];
  const acks: Uint8Array[] = [];
  let peerMs = 0;
  for (let done = 0; done < count; done += batch) {
    delivers.length = 0;
    acks.length = 0;
    for (let k = 0; k < batch; k++) {
      const i = done + k;
      const id = new Uint8Array(randomBytes(16));
      const s = snd[i % senders]!;
      const ri = Math.floor(i / senders) % recipients;
      const r = rcpt[ri]!;
      const cap = capabilityField(s.caps[ri]!.capId, s.caps[ri]!.capKey, r.reg.fingerprint, id);
      delivers.push(encode({ type: MsgType.DELIVER, cookie: s.cookie, to: r.reg.fingerprint, id, blob, cap }));
      acks.push(sealSession(r.reg.keys.c2p, r.reg.keys.sessionId, ++r.tx, { type: MsgType.ACK, ids: [id] }));
    }
    const t0 = cpuMs();
    for (let k = 0; k < batch; k++) {
      const i = done + k;
      peer.handle(now, snd[i % senders]!.addr, delivers[k]!);
      while (peer.pollTransmit());
      peer.handle(now, rcpt[Math.floor(i / senders) % recipients]!.addr, acks[k]!);
      while (peer.pollTransmit());
    }
    peerMs += cpuMs() - t0;
  }
  const n = Math.ceil(count / batch) * batch;
  const st = peer.stats();
  if (st.waitingMessages !== 0) throw new Error('messages left waiting');
  for (const reason of ['bad_session_tag', 'session_replay', 'bad_capability', 'capability_unchecked']) {
    if (st.drops[reason]) throw new Error(`the peer dropped ${st.drops[reason]} datagrams as ${reason}`);
  }
  return { perS: Math.round((n * 1000) / peerMs), usPerMessage: Math.round((peerMs * 1000 * 100) / n) / 100 };
}
