/** The part of sodium-native (libsodium, https://github.com/holepunchto/sodium-native) that src/crypto/ uses. */
declare module 'sodium-native' {
  /** BLAKE2b (RFC 7693) of `input` into `out` (16..64 bytes), keyed with `key` (16..64 bytes) when given. */
  export function crypto_generichash(out: Uint8Array, input: Uint8Array, key?: Uint8Array): void;
  const sodium: { crypto_generichash: typeof crypto_generichash };
  export default sodium;
}
