/**
 * The 60-digit safety number of a pair of identities, built like Signal's numeric fingerprint
 * (NumericFingerprintGenerator, version 1 scheme) with SHA-512 (FIPS 180-4): for each side,
 * h_0 is empty and h_{i+1} = SHA-512(version || fingerprint || h_i) for 5200 iterations; the first
 * 30 bytes of the result are six 5-byte big-endian chunks, each taken mod 100000 as 5 digits, giving
 * 30 digits per side. The two halves are concatenated in sorted order, so both sides see the same
 * number. About 2^99.7 per side, plus the 5200 iterations (~2^12.3) of work per trial.
 */
import { hash } from 'node:crypto';
import { FINGERPRINT_BYTES } from '../protocol/constants.js';

export const SAFETY_NUMBER_ITERATIONS = 5200;
/** Scheme version, 2 bytes big-endian, at the start of every hash input. */
export const SAFETY_NUMBER_VERSION = 1;
export const SAFETY_NUMBER_DIGITS = 60;
export const SAFETY_NUMBER_GROUP_DIGITS = 5;

const VERSION_BYTES = Uint8Array.of(SAFETY_NUMBER_VERSION >> 8, SAFETY_NUMBER_VERSION & 0xff);
const CHUNKS_PER_SIDE = 6;
const CHUNK_BYTES = 5;

function checkFingerprint(fp: Uint8Array, name: string): void {
  if (!(fp instanceof Uint8Array) || fp.length !== FINGERPRINT_BYTES) throw new TypeError(`${name} must be ${FINGERPRINT_BYTES} bytes`);
}

/** The 30 digits contributed by one fingerprint. */
export function safetyNumberHalf(fingerprint: Uint8Array): string {
  checkFingerprint(fingerprint, 'fingerprint');
  let h: Buffer = Buffer.alloc(0);
  for (let i = 0; i < SAFETY_NUMBER_ITERATIONS; i++) {
    h = hash('sha512', Buffer.concat([VERSION_BYTES, fingerprint, h]), 'buffer');
  }
  let out = '';
  for (let c = 0; c < CHUNKS_PER_SIDE; c++) {
    out += (h.readUIntBE(c * CHUNK_BYTES, CHUNK_BYTES) % 100000).toString().padStart(5, '0');
  }
  return out;
}

/** 60 digits, the same whichever side computes it. */
export function safetyNumber(fpA: Uint8Array, fpB: Uint8Array): string {
  checkFingerprint(fpA, 'fpA');
  checkFingerprint(fpB, 'fpB');
  const [a, b] = [safetyNumberHalf(fpA), safetyNumberHalf(fpB)];
  return a <= b ? a + b : b + a;
}

/** "12345 67890 ..." : groups of 5 digits separated by single spaces. */
export function formatSafetyNumber(digits: string): string {
  return (digits.match(/\d{1,5}/g) ?? []).join(' ');
}
