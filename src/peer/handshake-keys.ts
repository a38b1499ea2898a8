/**
 * The peer's X25519 handshake keys, one per cookie epoch. A CHALLENGE carries the key of the
 * current epoch with the peer's Ed25519 signature over it, made once when the epoch's key is made:
 * answering REGISTER costs a cookie MAC and no signature. REGISTER_PROOF names the key it answers;
 * the keys of the current and the previous epoch are accepted (as cookies are), older ones are
 * forgotten, so a session key cannot be recomputed from the peer's memory once its epoch is gone.
 *
 * Bound: HANDSHAKE_KEYS_MAX keys (the current, the previous and one being replaced).
 */
import type { KeyObject } from 'node:crypto';
import type { Identity } from '../identity/certificate.js';
import type { Random } from '../core/types.js';
import { peerKeySigned, x25519KeyPair } from '../crypto/session.js';

export const HANDSHAKE_KEYS_MAX = 3;

export interface HandshakeKey {
  readonly epoch: number;
  readonly privateKey: KeyObject;
  readonly publicKey: Uint8Array;
  /** Ed25519 by the peer over LABEL_PEER_KEY || publicKey. */
  readonly keySig: Uint8Array;
}

export class HandshakeKeys {
  private readonly keys = new Map<number, HandshakeKey>();

  constructor(private readonly identity: Identity, private readonly random: Random) {}

  /** The key of `epoch`, made (and signed) on first use. */
  current(epoch: number): HandshakeKey {
    let k = this.keys.get(epoch);
    if (k) return k;
    const pair = x25519KeyPair(this.random(32));
    k = { epoch, privateKey: pair.privateKey, publicKey: pair.publicKey, keySig: this.identity.sign(peerKeySigned(pair.publicKey)) };
    this.keys.set(epoch, k);
    while (this.keys.size > HANDSHAKE_KEYS_MAX) this.keys.delete(this.keys.keys().next().value!);
    return k;
  }

  /** The key with these public bytes, if it belongs to `epoch` or the one before. */
  find(epoch: number, publicKey: Uint8Array): HandshakeKey | undefined {
    for (const e of [epoch, (epoch - 1) >>> 0]) {
      const k = this.keys.get(e);
      if (k && Buffer.from(k.publicKey).equals(publicKey)) return k;
    }
    return undefined;
  }
}
