/**
 * Relay through Peer.handle() in this process, no sockets: the peer's own CPU per relayed message
 * (DELIVER in, PUSH out, ACK in, RESULT 200 out), with `senders` senders and `recipients`
 * registered recipients. The datagrams are encoded before the timed loop, so only the peer's work
 * is timed.
 */
import { randomBytes } from 'node:crypto';
import { LABEL_REGISTER, MsgType } from '../../src/protocol/constants.js';
import { decode, encode } from '../../src/protocol/codec.js';
import { generateIdentity, signWith } from '../../src/identity/certificate.js';
import { fingerprintOf } from '../../src/identity/certificate.js';
import { Peer } from '../../src/peer/peer.js';
import type { Addr } from '../../src/core/types.js';
import { certAt, privateKeyAt, type CertSet } from './certs.js';

const LABEL_REGISTER_BYTES = Buffer.from(LABEL_REGISTER, 'ascii');

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
  const peer = new Peer({ identity, random: (n) => new Uint8Array(randomBytes(n)), rateLimit: null }, now);
  const rcpt: Array<{ addr: Addr; fp: Uint8Array }> = [];
  for (let i = 0; i < recipients; i++) {
    const cert = certAt(certs, first + i);
    const addr = { host: '10.1.0.1', port: 1000 + i };
    const nonce = randomBytes(16);
    const ch = exchange(peer, now, addr, encode({ type: MsgType.REGISTER, cert, nonce }));
    if (ch.type !== MsgType.CHALLENGE) throw new Error('no CHALLENGE');
    const sig = signWith(privateKeyAt(certs, first + i), Buffer.concat([LABEL_REGISTER_BYTES, ch.cookie, peer.fingerprint, nonce]));
    const ok = exchange(peer, now, addr, encode({ type: MsgType.REGISTER_PROOF, cert, nonce, cookie: ch.cookie, sig }));
    if (ok.type !== MsgType.OK) throw new Error('registration refused');
    rcpt.push({ addr, fp: fingerprintOf(cert) });
  }
  const snd: Array<{ addr: Addr; cookie: Uint8Array }> = [];
  for (let i = 0; i < senders; i++) {
    const addr = { host: '10.2.0.1', port: 2000 + i };
    const ch = exchange(peer, now, addr, encode({ type: MsgType.HELLO, nonce: randomBytes(16) }));
    if (ch.type !== MsgType.CHALLENGE) throw new Error('no CHALLENGE');
    snd.push({ addr, cookie: ch.cookie });
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
      const id = randomBytes(16);
      delivers.push(encode({ type: MsgType.DELIVER, cookie: snd[i % senders]!.cookie, to: rcpt[Math.floor(i / senders) % recipients]!.fp, id, blob }));
      acks.push(encode({ type: MsgType.ACK, ids: [id] }));
    }
    const t0 = performance.now();
    for (let k = 0; k < batch; k++) {
      const i = done + k;
      peer.handle(now, snd[i % senders]!.addr, delivers[k]!);
      while (peer.pollTransmit());
      peer.handle(now, rcpt[Math.floor(i / senders) % recipients]!.addr, acks[k]!);
      while (peer.pollTransmit());
    }
    peerMs += performance.now() - t0;
  }
  const n = Math.ceil(count / batch) * batch;
  if (peer.stats().waitingMessages !== 0) throw new Error('messages left waiting');
  return { perS: Math.round((n * 1000) / peerMs), usPerMessage: Math.round((peerMs * 1000 * 100) / n) / 100 };
}
