/**
 * Key conversion and import for sealing. An identity's Ed25519 key (RFC 8032) is reused for X25519
 * (RFC 7748) through the birational map from the Edwards to the Montgomery form of Curve25519, the
 * same conversion as libsodium's crypto_sign_ed25519_pk_to_curve25519 / _sk_to_curve25519
 * (@noble/curves ed25519.utils.toMontgomery / toMontgomerySecret). Raw X25519 keys are wrapped in
 * JWK (RFC 8037) so that node:crypto does the scalar multiplications. Derived keys are cached in bounded LRU maps.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { X509Certificate, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { fingerprintOf, toHex, type Identity } from '../identity/certificate.js';
import { BoundedLru } from './lru.js';

/** Most recipient / sender certificates whose derived keys are kept in memory. */
export const SEAL_KEY_CACHE_ENTRIES_MAX = 1024;

export const X25519_KEY_BYTES = 32;

const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/**
 * An X25519 private KeyObject from 32 raw bytes (clamped by the X25519 function itself).
 * The JWK import (RFC 8037) is about 15 times faster than PKCS#8 in node:crypto because it skips
 * OpenSSL's decoder chain; Node reads only `d` of a private OKP key and derives the public key
 * itself, so `x` is left empty. PKCS#8 is the fallback should a Node version insist on `x`.
 */
export function x25519PrivateFromRaw(raw: Uint8Array): KeyObject {
  const d = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64url');
  try {
    return createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d, x: '' }, format: 'jwk' });
  } catch {
    return createPrivateKey({ key: Buffer.concat([PKCS8_X25519_PREFIX, raw]), format: 'der', type: 'pkcs8' });
  }
}

/** An X25519 public KeyObject from 32 raw bytes (JWK import, ten times faster than SPKI). */
export function x25519PublicFromRaw(raw: Uint8Array): KeyObject {
  if (raw.length !== X25519_KEY_BYTES) throw new RangeError(`X25519 public key must be ${X25519_KEY_BYTES} bytes`);
  const x = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64url');
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x }, format: 'jwk' });
}

/** The 32 raw bytes of an X25519 or Ed25519 KeyObject's public key (JWK export, RFC 8037). */
export function rawPublic(key: KeyObject): Uint8Array {
  const x = key.export({ format: 'jwk' }).x;
  if (typeof x !== 'string') throw new TypeError('key has no OKP public value');
  return new Uint8Array(Buffer.from(x, 'base64url'));
}

/** Ed25519 public key (raw 32 bytes) to its X25519 (Montgomery u) public key. Throws on a bad point. */
export function edPublicToX25519(edPublic: Uint8Array): Uint8Array {
  return ed25519.utils.toMontgomery(edPublic);
}

/** Ed25519 seed (raw 32 bytes) to its X25519 secret scalar (SHA-512, clamped, as libsodium). */
export function edSeedToX25519(seed: Uint8Array): Uint8Array {
  return ed25519.utils.toMontgomerySecret(seed);
}

/** What a certificate gives for sealing and verifying. */
export interface CertKeys {
  readonly fingerprint: Uint8Array;
  readonly edPublic: KeyObject;
  readonly xPublicRaw: Uint8Array;
  readonly xPublic: KeyObject;
}

const certCache = new BoundedLru<string, CertKeys>(SEAL_KEY_CACHE_ENTRIES_MAX);

/**
 * Keys of a certificate: it must parse, carry an Ed25519 key whose point converts, and verify its
 * own signature. Validity dates are the caller's business (checkCertificate). Returns null for
 * anything else; never throws.
 */
export function certKeys(der: Uint8Array): CertKeys | null {
  if (!(der instanceof Uint8Array)) return null;
  const fingerprint = fingerprintOf(der);
  const key = toHex(fingerprint);
  const hit = certCache.get(key);
  if (hit) return hit;
  try {
    const cert = new X509Certificate(der);
    const edPublic = cert.publicKey;
    if (edPublic.asymmetricKeyType !== 'ed25519' || !cert.verify(edPublic)) return null;
    const xPublicRaw = edPublicToX25519(rawPublic(edPublic));
    const keys: CertKeys = { fingerprint, edPublic, xPublicRaw, xPublic: x25519PublicFromRaw(xPublicRaw) };
    certCache.set(key, keys);
    return keys;
  } catch {
    return null;
  }
}

/** The X25519 side of an identity. */
export interface IdentityXKeys {
  readonly xPrivate: KeyObject;
  readonly xPublicRaw: Uint8Array;
}

const identityCache = new WeakMap<Identity, IdentityXKeys>();

/** X25519 keys of an identity, derived once per Identity object. */
export function identityXKeys(id: Identity): IdentityXKeys {
  const hit = identityCache.get(id);
  if (hit) return hit;
  const jwk = id.privateKey.export({ format: 'jwk' });
  if (typeof jwk.d !== 'string' || typeof jwk.x !== 'string') throw new TypeError('identity key does not export as an Ed25519 JWK');
  const seed = new Uint8Array(Buffer.from(jwk.d, 'base64url'));
  const keys: IdentityXKeys = {
    xPrivate: x25519PrivateFromRaw(edSeedToX25519(seed)),
    xPublicRaw: edPublicToX25519(new Uint8Array(Buffer.from(jwk.x, 'base64url'))),
  };
  seed.fill(0);
  identityCache.set(id, keys);
  return keys;
}
