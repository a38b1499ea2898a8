/**
 * The per-identity 6-digit code: a short "is this the same identity as before" hint derived from a
 * certificate fingerprint with scrypt (RFC 7914), memory-hard and deliberately slow, so that finding
 * another key with the same code costs about 1e6 x (key generation + certificate + one scrypt).
 * Parameters: N = 2^17, r = 8, p = 1 (128 MiB, ~0.4 s), salt "peerpost/1 identity-code".
 * The first 8 output bytes are read as a big-endian 64-bit integer and reduced mod 10^6. The bias:
 * 2^64 = 18446744073709 * 10^6 + 551616, so the 551616 smallest codes are more likely by a factor
 * of 1 + 1/18446744073709 (about 5e-14): negligible.
 */
import { scrypt, scryptSync } from 'node:crypto';
import { FINGERPRINT_BYTES } from '../protocol/constants.js';

export const IDENTITY_CODE_SCRYPT_N = 2 ** 17;
export const IDENTITY_CODE_SCRYPT_R = 8;
export const IDENTITY_CODE_SCRYPT_P = 1;
export const IDENTITY_CODE_SALT = 'peerpost/1 identity-code';
export const IDENTITY_CODE_DIGITS = 6;
/** scrypt needs 128 * N * r bytes (128 MiB); allow headroom for OpenSSL's own accounting. */
export const IDENTITY_CODE_MAXMEM_BYTES = 256 * 1024 * 1024;

const OUTPUT_BYTES = 8;
const MODULUS = 10n ** BigInt(IDENTITY_CODE_DIGITS);
const OPTIONS = { N: IDENTITY_CODE_SCRYPT_N, r: IDENTITY_CODE_SCRYPT_R, p: IDENTITY_CODE_SCRYPT_P, maxmem: IDENTITY_CODE_MAXMEM_BYTES };

function checkFingerprint(fingerprint: Uint8Array): void {
  if (!(fingerprint instanceof Uint8Array) || fingerprint.length !== FINGERPRINT_BYTES) {
    throw new TypeError(`fingerprint must be ${FINGERPRINT_BYTES} bytes`);
  }
}

function digits(out: Buffer): string {
  return (out.readBigUInt64BE(0) % MODULUS).toString().padStart(IDENTITY_CODE_DIGITS, '0');
}

/** Six digits for a fingerprint. Blocks the thread for the scrypt run (~0.4 s). */
export function identityCode(fingerprint: Uint8Array): string {
  checkFingerprint(fingerprint);
  return digits(scryptSync(fingerprint, IDENTITY_CODE_SALT, OUTPUT_BYTES, OPTIONS));
}

/** The same as identityCode, computed on the libuv thread pool. */
export function identityCodeAsync(fingerprint: Uint8Array): Promise<string> {
  checkFingerprint(fingerprint);
  return new Promise((resolve, reject) => {
    scrypt(fingerprint, IDENTITY_CODE_SALT, OUTPUT_BYTES, OPTIONS, (err, out) => (err ? reject(err) : resolve(digits(out))));
  });
}
