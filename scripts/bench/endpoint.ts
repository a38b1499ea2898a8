/**
 * Load-generator side of the benchmarks: connected UDP sockets (4 MiB buffers) that speak the
 * Root envelope through the project's codec, and the real registration handshake (REGISTER ->
 * CHALLENGE -> REGISTER_PROOF -> OK). The generator does not verify the CHALLENGE signature: a
 * benchmark client trusts its own peer, and skipping it keeps the generator's core free.
 */
import dgram from 'node:dgram';
import { LABEL_REGISTER, MsgType } from '../../src/protocol/constants.js';
import { decode, encode } from '../../src/protocol/codec.js';
import type { Message } from '../../src/protocol/messages.js';
import { fingerprintOf, signWith } from '../../src/identity/certificate.js';
import type { Addr } from '../../src/core/types.js';
import { randomBytes, type KeyObject } from 'node:crypto';

/** Forwarder datagrams start with a uint16 destination index; index -> address is set by a 0xffff hello. */
export const FORWARD_HELLO = 0xffff;
const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;
const LABEL_REGISTER_BYTES = Buffer.from(LABEL_REGISTER, 'ascii');

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
}

/**
 * One full registration of `cert` on this endpoint's peer. Resolves with the cookie, or rejects
 * on an ERROR or after `timeoutMs`.
 */
export function register(ep: Endpoint, cert: Uint8Array, key: KeyObject, timeoutMs = 5000): Promise<Registered> {
  return new Promise((resolve, reject) => {
    const nonce = randomBytes(16);
    let got: Registered | undefined;
    const timer = setTimeout(() => reject(new Error('registration timed out')), timeoutMs);
    ep.onData = (data) => {
      const r = decode(data);
      if (!r.ok) return;
      const m = r.msg;
      if (m.type === MsgType.CHALLENGE) {
        const peerFingerprint = fingerprintOf(m.peerCert);
        got = { cookie: m.cookie, peerFingerprint };
        const sig = signWith(key, Buffer.concat([LABEL_REGISTER_BYTES, m.cookie, peerFingerprint, nonce]));
        ep.sendMsg({ type: MsgType.REGISTER_PROOF, cert, nonce, cookie: m.cookie, sig });
      } else if (m.type === MsgType.OK && got) {
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

/** Where `marker` sits in `bytes` (an encoded template), or throws. */
export function offsetOf(bytes: Uint8Array, marker: Uint8Array): number {
  const i = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).indexOf(Buffer.from(marker));
  if (i < 0) throw new Error('marker not found in template');
  return i;
}
