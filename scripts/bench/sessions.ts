/**
 * Session records in bulk for the benchmarks that need a registry of up to 1,000,000 clients
 * without running 1,000,000 registrations: record i is 120 bytes of a ChaCha20 keystream (RFC 8439)
 * under a 32-byte seed, split as the session id (8) and the secrets a REGISTER_PROOF leaves in the
 * peer's registry (c2p MAC key, p2c MAC key, delivery key, nonce: 112, the registry's slot of a client). The
 * process that fills the peer and the load generator make the same records from the same seed, so
 * the generator knows every session's keys and each keepalive it sends carries a real MAC.
 */
import { createCipheriv } from 'node:crypto';
import { KEYS_BYTES, KEYS_C2P, type Registry } from '../../src/peer/registry.js';
import { bytesKey } from '../../src/peer/keys.js';
import { SESSION_ID_BYTES } from '../../src/protocol/constants.js';
import { Peer } from '../../src/peer/peer.js';

export const SESSION_RECORD_BYTES = SESSION_ID_BYTES + KEYS_BYTES;
const ZERO_IV = Buffer.alloc(16);

export class SessionRecords {
  private constructor(readonly data: Buffer, readonly count: number) {}

  static make(seed: Uint8Array, count: number): SessionRecords {
    if (seed.length !== 32) throw new TypeError('the session seed is 32 bytes');
    const c = createCipheriv('chacha20', seed, ZERO_IV);
    return new SessionRecords(c.update(Buffer.alloc(count * SESSION_RECORD_BYTES)), count);
  }

  sessionId(i: number): Buffer {
    const at = i * SESSION_RECORD_BYTES;
    return this.data.subarray(at, at + SESSION_ID_BYTES);
  }

  /** The 112 bytes of the registry's slot of a client. */
  secrets(i: number): Buffer {
    const at = i * SESSION_RECORD_BYTES + SESSION_ID_BYTES;
    return this.data.subarray(at, at + KEYS_BYTES);
  }

  c2p(i: number): Buffer {
    return this.secrets(i).subarray(KEYS_C2P, KEYS_C2P + 32);
  }

  p2c(i: number): Buffer {
    return this.secrets(i).subarray(32, 64);
  }
}

/**
 * Put client i of `records` into `peer`'s registry, as a REGISTER_PROOF that verified would leave
 * it (the same Registry.put, which copies the secrets into its slab), with certificate `cert` (DER) at
 * address `addrText`.
 */
export function putSession(peer: Peer, now: number, records: SessionRecords, i: number, fp: Uint8Array, cert: Uint8Array, addrText: string): void {
  const registry = (peer as unknown as { registry: Registry }).registry;
  registry.put(now, bytesKey(fp), bytesKey(cert), addrText, bytesKey(records.sessionId(i)), records.secrets(i));
}
