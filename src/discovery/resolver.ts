/**
 * What a sender needs from discovery: the newest verified home of a fingerprint, or why there is
 * none. HomeDht (home-dht.ts) answers it from HyperDHT; a simulator can answer it from a
 * deterministic table. Nothing here imports hyperdht.
 */
import type { HomeRecordReason, VerifiedHome } from './home-record.js';

export type ResolveResult =
  | { ok: true; home: VerifiedHome }
  | { ok: false; reason: 'dht-unreachable' | 'not-found' | 'invalid' | 'timeout'; detail: string; refused?: HomeRecordReason[] };

export interface ResolveOptions {
  /** The seq of the record the sender already holds: only a newer one is returned. */
  heldSeq?: number;
  /** At most this long; default DHT_RESOLVE_TIMEOUT_MS. */
  timeoutMs?: number;
}

export interface HomeResolver {
  resolve(fingerprint: Uint8Array, opts?: ResolveOptions): Promise<ResolveResult>;
}
