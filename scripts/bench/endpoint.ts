/**
 * Load-generator side of the benchmarks: connected UDP sockets (4 MiB buffers) that speak the
 * Root envelope through the project's codec, the real registration handshake of protocol 2
 * (REGISTER -> CHALLENGE -> REGISTER_PROOF -> OK inside the new session) and HELLO -> COOKIE.
 * The generator does not verify the CHALLENGE's certificate and key signature: a benchmark client
 * trusts its own peer, and skipping it keeps the generator's core free. It does verify the MAC of
 * the OK that opens the session.
 */
import dgram from 'node:dgram';
import { MsgType } from '../../src/protocol/constants.js';
import { decode, encode } from '../../src/protocol/codec.js';
import type { ChallengeMsg, Message } from '../../src/protocol/messages.js';
import { fingerprintOf, signWith } from '../../src/identity/certificate.js';
import { registerProof, sessionTagOk, type SessionKeys } from '../../src/crypto/session.js';
import type { Addr } from '../../src/core/types.js';
import { randomBytes, type KeyObject } from 'node:crypto';

/** Forwarder datagrams start with a uint16 destination index; index -> address is set by a 0xffff hello. */
export const FORWARD_HELLO = 0xffff;
const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;

export class Endpoint {
  onData: (data: Buffer) => void = () => {};
  private constructor(readonly socket: dgram.Socket) {
    socket.on('message', (m) => this.onData(m));
  }

  static async open(server: Addr): Promise<Endpoint> {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
    s.setRecvBufferSize(SOCKET_BUFFER_BYTES);
    s.setSendBufferSize(SOCKET_BUFFER_BYTES);
    await new Promise<void>((resolve) => s.connect(server.port, server.host, resolve));
    return new Endpoint(s);
  }

  send(data: Uint8Array): void {
    this.socket.send(data);
  }

  sendMsg(m: Message): void {
    this.socket.send(encode(m));
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

export interface Registered {
  cookie: Uint8Array;
  peerFingerprint: Uint8Array;
  /** This client's fingerprint. */
  fingerprint: Uint8Array;
  /** The session the registration's OK opened (its counter 0 is taken by that OK). */
  keys: SessionKeys;
  /** The delivery key handed to the peer; capabilities for contacts derive from it. */
  deliveryKey: Uint8Array;
}

/**
 * The client's side of a CHALLENGE: the REGISTER_PROOF (protocol 2: a fresh X25519 key, the
 * session keys, the sealed delivery key, the proof signed with `key`) and the session it opens.
 */
export function proveRegistration(cert: Uint8Array, key: KeyObject, nonce: Uint8Array, m: ChallengeMsg, deliveryKey: Uint8Array): { proof: Uint8Array; reg: Registered } {
  const peerFingerprint = fingerprintOf(m.peerCert);
  const fingerprint = fingerprintOf(cert);
  const made = registerProof({
    cert, fingerprint, sign: (d) => signWith(key, d), peerFingerprint, nonce, cookie: m.cookie, peerKey: m.peerKey, deliveryKey, secret: randomBytes(32),
  });
  if (!made) throw new Error('the peer\'s handshake key gives no shared secret');
  return { proof: encode(made.msg), reg: { cookie: m.cookie, peerFingerprint, fingerprint, keys: made.keys, deliveryKey } };
}

/** The OK of a registration: SESSION counter 0 in `keys`' session, its MAC right. */
export function isRegistrationOk(m: Message, keys: SessionKeys): boolean {
  return m.type === MsgType.SESSION && m.counter === 0 && m.inner.type === MsgType.OK && Buffer.from(m.sessionId).equals(keys.sessionId) && sessionTagOk(keys.p2c, m);
}

/**
 * One full registration of `cert` on this endpoint's peer (REGISTER -> CHALLENGE ->
 * REGISTER_PROOF -> OK in the new session). Resolves with the cookie and the session, or rejects
 * on an ERROR or after `timeoutMs`.
 */
export function register(ep: Endpoint, cert: Uint8Array, key: KeyObject, timeoutMs = 5000): Promise<Registered> {
  return new Promise((resolve, reject) => {
    const nonce = randomBytes(16);
    const deliveryKey = new Uint8Array(randomBytes(32));
    let got: Registered | undefined;
    const timer = setTimeout(() => reject(new Error('registration timed out')), timeoutMs);
    ep.onData = (data) => {
      const r = decode(data);
      if (!r.ok) return;
      const m = r.msg;
      if (m.type === MsgType.CHALLENGE && !got && Buffer.from(m.nonce).equals(nonce)) {
        const made = proveRegistration(cert, key, nonce, m, deliveryKey);
        got = made.reg;
        ep.send(made.proof);
      } else if (got && isRegistrationOk(m, got.keys)) {
        clearTimeout(timer);
        resolve(got);
      } else if (m.type === MsgType.ERROR) {
        clearTimeout(timer);
        reject(new Error(`registration refused: code ${m.code} ${m.detail}`));
      }
    };
    ep.sendMsg({ type: MsgType.REGISTER, cert, nonce });
  });
}

/** A cookie from the peer for this endpoint's address: HELLO -> COOKIE. */
export function hello(ep: Endpoint, timeoutMs = 5000): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const nonce = randomBytes(16);
    const timer = setTimeout(() => reject(new Error('HELLO got no COOKIE')), timeoutMs);
    ep.onData = (data) => {
      const r = decode(data);
      if (r.ok && r.msg.type === MsgType.COOKIE && Buffer.from(r.msg.nonce).equals(nonce)) {
        clearTimeout(timer);
        resolve(r.msg.cookie);
      }
    };
    ep.sendMsg({ type: MsgType.HELLO, nonce });
  });
}

/** Where `marker` sits in `bytes` (an encoded template), or throws. */
export function offsetOf(bytes: Uint8Array, marker: Uint8Array): number {
  const i = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).indexOf(Buffer.from(marker));
  if (i < 0) throw new Error('marker not found in template');
  return i;
}
