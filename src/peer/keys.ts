/**
 * Compact map keys for raw byte strings. A fingerprint (32 bytes) or a message id (16 bytes) is
 * kept as a one-byte-per-char ("latin1") string: 32 characters instead of 64 hex characters, and
 * no ArrayBuffer per key. The same encoding stores certificate DER in the registry.
 */

/** Raw bytes as a latin1 string (one char per byte). */
export function bytesKey(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
}

/** The inverse of bytesKey (a Buffer, possibly a view of Node's pool: copy it before keeping it). */
export function keyBytes(s: string): Uint8Array {
  return Buffer.from(s, 'latin1');
}

/** Bytes [at, at + len) of `b` as a latin1 string (bytesKey of that range, without a view object). */
export function latin1(b: Uint8Array, at: number, len: number): string {
  return Buffer.from(b.buffer, b.byteOffset + at, len).toString('latin1');
}
