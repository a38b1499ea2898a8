/**
 * The stored form of a ratchet session (RatchetState of ratchet.ts): versioned bytes, so that a
 * client keeps a session in the same database transaction as the message it belongs to. Layout:
 * docs/PROTOCOL.md section 21.5. The decoder refuses anything malformed with a PeerpostError of
 * code PEERPOST_RATCHET_BAD_STATE whose message names what is wrong; a trailing SHA-256 check
 * value catches storage corruption (it is no defence against whoever can write the store).
 */
import { createHash } from 'node:crypto';
import { PeerpostError } from '../core/errors.js';
import { FINGERPRINT_BYTES } from '../protocol/constants.js';
import { ratchetKeyPair, RATCHET_KEY_BYTES, RATCHET_SKIPPED_KEYS_MAX, type RatchetState, type SkippedKey } from './ratchet.js';

/** First byte of a stored session. */
export const RATCHET_STATE_VERSION = 1;
/** Bytes of the check value at the end: the first 16 of SHA-256 of everything before it. */
export const RATCHET_STATE_CHECK_BYTES = 16;

const FLAG_DHR = 1;
const FLAG_SENDING = 2;
const FLAG_RECEIVING = 4;
const K = RATCHET_KEY_BYTES;
/** version, flags, two fingerprints, DHs secret, RK, NHKs, NHKr, Ns, Nr, PN, skipped count. */
const FIXED_BYTES = 1 + 1 + 2 * FINGERPRINT_BYTES + 4 * K + 3 * 4 + 2;
const SKIPPED_ENTRY_BYTES = K + 4 + K + 8;

/** The three shapes a session can have: before the first reply (initiator), able to send, both. */
const VALID_FLAGS = new Set([0, FLAG_DHR | FLAG_SENDING, FLAG_DHR | FLAG_SENDING | FLAG_RECEIVING]);

function bad(message: string): PeerpostError {
  return new PeerpostError('PEERPOST_RATCHET_BAD_STATE', `stored ratchet session refused: ${message}`);
}

function check(bytes: Uint8Array): Uint8Array {
  return createHash('sha256').update(bytes).digest().subarray(0, RATCHET_STATE_CHECK_BYTES);
}

/** The bytes of a state. Throws PEERPOST_RATCHET_BAD_STATE for a state no ratchet function makes. */
export function encodeRatchetState(s: RatchetState): Uint8Array {
  const flags = (s.dhr ? FLAG_DHR : 0) | (s.cks && s.hks ? FLAG_SENDING : 0) | (s.ckr && s.hkr ? FLAG_RECEIVING : 0);
  if (!VALID_FLAGS.has(flags)) throw bad(`inconsistent keys (flags ${flags})`);
  if (s.skipped.length > RATCHET_SKIPPED_KEYS_MAX) throw bad(`more than ${RATCHET_SKIPPED_KEYS_MAX} skipped keys`);
  const parts: Uint8Array[] = [Uint8Array.of(RATCHET_STATE_VERSION, flags), s.initiatorFingerprint, s.responderFingerprint, s.dhsSecret];
  if (s.dhr) parts.push(s.dhr);
  parts.push(s.rk);
  if (flags & FLAG_SENDING) parts.push(s.cks!, s.hks!);
  if (flags & FLAG_RECEIVING) parts.push(s.ckr!, s.hkr!);
  const counters = Buffer.alloc(3 * 4 + 2);
  counters.writeUInt32BE(s.ns, 0);
  counters.writeUInt32BE(s.nr, 4);
  counters.writeUInt32BE(s.pn, 8);
  counters.writeUInt16BE(s.skipped.length, 12);
  parts.push(s.nhks, s.nhkr, counters);
  for (const k of s.skipped) {
    const e = Buffer.alloc(SKIPPED_ENTRY_BYTES);
    e.set(k.hk, 0);
    e.writeUInt32BE(k.n, K);
    e.set(k.mk, K + 4);
    e.writeBigUInt64BE(BigInt(k.atMs), K + 4 + K);
    parts.push(e);
  }
  const body = Buffer.concat(parts);
  const out = Buffer.concat([body, check(body)]);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** The state stored in `bytes`. Throws PEERPOST_RATCHET_BAD_STATE, saying why, for anything malformed. */
export function decodeRatchetState(bytes: Uint8Array): RatchetState {
  if (!(bytes instanceof Uint8Array)) throw bad('not a byte array');
  if (bytes.length < FIXED_BYTES + RATCHET_STATE_CHECK_BYTES) throw bad(`${bytes.length} bytes is shorter than the smallest session (${FIXED_BYTES + RATCHET_STATE_CHECK_BYTES})`);
  if (bytes[0] !== RATCHET_STATE_VERSION) throw bad(`unknown version ${bytes[0]} (this build reads ${RATCHET_STATE_VERSION})`);
  const flags = bytes[1]!;
  if (!VALID_FLAGS.has(flags)) throw bad(`invalid flags 0x${flags.toString(16)}`);
  const body = bytes.subarray(0, bytes.length - RATCHET_STATE_CHECK_BYTES);
  if (!Buffer.from(check(body)).equals(bytes.subarray(body.length))) throw bad('check value does not match (corrupted)');

  const b = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  let at = 2;
  const take = (n: number): Uint8Array => {
    if (at + n > b.length) throw bad(`truncated at byte ${at}`);
    const v = new Uint8Array(b.subarray(at, at + n));
    at += n;
    return v;
  };
  const initiatorFingerprint = take(FINGERPRINT_BYTES);
  const responderFingerprint = take(FINGERPRINT_BYTES);
  const dhsSecret = take(K);
  const dhr = flags & FLAG_DHR ? take(K) : null;
  const rk = take(K);
  const [cks, hks] = flags & FLAG_SENDING ? [take(K), take(K)] : [null, null];
  const [ckr, hkr] = flags & FLAG_RECEIVING ? [take(K), take(K)] : [null, null];
  const nhks = take(K);
  const nhkr = take(K);
  const counters = Buffer.from(take(14));
  const ns = counters.readUInt32BE(0);
  const nr = counters.readUInt32BE(4);
  const pn = counters.readUInt32BE(8);
  const count = counters.readUInt16BE(12);
  if (count > RATCHET_SKIPPED_KEYS_MAX) throw bad(`${count} skipped keys, more than ${RATCHET_SKIPPED_KEYS_MAX}`);
  if (b.length - at !== count * SKIPPED_ENTRY_BYTES) throw bad(`${b.length - at} bytes for ${count} skipped keys of ${SKIPPED_ENTRY_BYTES} bytes`);
  if (flags === 0 && (ns !== 0 || nr !== 0 || pn !== 0 || count !== 0)) throw bad('a session before its first reply has counters or skipped keys');
  const skipped: SkippedKey[] = [];
  for (let i = 0; i < count; i++) {
    const hk = take(K);
    const n = Buffer.from(take(4)).readUInt32BE(0);
    const mk = take(K);
    const atMs = Buffer.from(take(8)).readBigUInt64BE(0);
    if (atMs > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`skipped key ${i} has a time beyond the safe integer range`);
    skipped.push({ hk, n, mk, atMs: Number(atMs) });
  }
  return {
    initiatorFingerprint, responderFingerprint, dhsSecret, dhsPublic: ratchetKeyPair(dhsSecret).publicKey, dhr, rk, cks, ckr,
    ns, nr, pn, hks, hkr, nhks, nhkr, skipped,
  };
}
