/**
 * End-to-end sealing of message content, so that peers see only the recipient's fingerprint and an
 * opaque blob. An ECIES-style construction from standard parts:
 *   - X25519 (RFC 7748) between a fresh ephemeral key and the recipient's Ed25519 certificate key
 *     (RFC 8032, RFC 8410) converted to X25519 with the birational map (as libsodium), see keys.ts;
 *   - HKDF-SHA256 (RFC 5869) for a one-time key and nonce;
 *   - ChaCha20-Poly1305 (RFC 8439) as the AEAD;
 *   - an Ed25519 signature by the sender inside, over a label, the recipient's fingerprint, the
 *     ephemeral public key and the content, so a recipient cannot re-seal it to someone else as if
 *     it came from the sender, and no part can be spliced into another blob;
 *   - CBOR (RFC 8949, the subset of src/protocol/cbor.ts) for the inner array.
 * Byte layout: docs/PROTOCOL.md, "Sealed content". Pure functions: randomness comes from `random`.
 */
import { createCipheriv, createDecipheriv, createPublicKey, diffieHellman, hkdfSync, verify } from 'node:crypto';
import { PeerpostError } from '../core/errors.js';
import { parseAddr, type Random } from '../core/types.js';
import { toHex, type Identity } from '../identity/certificate.js';
import { cborDecodeChecked, cborEncode } from '../protocol/cbor.js';
import { BLOB_MAX_BYTES, FINGERPRINT_BYTES, MESSAGE_ID_BYTES, SIGNATURE_BYTES } from '../protocol/constants.js';
import { certKeys, identityXKeys, rawPublic, x25519PrivateFromRaw, x25519PublicFromRaw, X25519_KEY_BYTES } from './keys.js';

/** First byte of every sealed blob. */
export const SEAL_VERSION = 1;
/** The sizes a sealed blob may have; the content is padded up to the smallest that fits. */
export const SEAL_BUCKETS_BYTES: readonly number[] = Object.freeze([256, 512, BLOB_MAX_BYTES]);
export const SEAL_TAG_BYTES = 16;
/** version (1) + ephemeral X25519 public key (32) + Poly1305 tag (16). */
export const SEAL_OVERHEAD_BYTES = 1 + X25519_KEY_BYTES + SEAL_TAG_BYTES;
/** The plaintext starts with the inner CBOR length, uint16 big-endian; zero bytes follow the CBOR. */
export const SEAL_LENGTH_PREFIX_BYTES = 2;
/** Longest fromPeer text (host:port), in UTF-8 bytes. */
export const SEAL_FROM_PEER_MAX_BYTES = 64;
/** Largest content kind; kinds are the client's, the seal treats them as a small number. */
export const SEAL_KIND_MAX = 255;
/** Domain labels (ASCII, no terminator). */
export const LABEL_SEAL_KDF = 'peerpost/1 seal';
export const LABEL_SEALED_SIG = 'peerpost/1 sealed';

/**
 * Inner CBOR bytes besides the body, at their largest: array head 1, kind 2, from 2+32,
 * fromPeer 2+64, id 1+16, sentAtMs 9, body head 3, sig 2+64.
 */
const INNER_FIXED_MAX_BYTES = 1 + 2 + (2 + FINGERPRINT_BYTES) + (2 + SEAL_FROM_PEER_MAX_BYTES) + (1 + MESSAGE_ID_BYTES) + 9 + 3 + (2 + SIGNATURE_BYTES);

/** The largest body that fits in BLOB_MAX_BYTES whatever the other fields hold (851). */
export const SEAL_BODY_MAX_BYTES = BLOB_MAX_BYTES - SEAL_OVERHEAD_BYTES - SEAL_LENGTH_PREFIX_BYTES - INNER_FIXED_MAX_BYTES;

const KDF_OUTPUT_BYTES = 32 + 12;
const LABEL_SEAL_KDF_BYTES = Buffer.from(LABEL_SEAL_KDF, 'ascii');
const LABEL_SEALED_SIG_BYTES = Buffer.from(LABEL_SEALED_SIG, 'ascii');
const SIG_FIELD_BYTES = 2 + SIGNATURE_BYTES;
const utf8 = new TextEncoder();

export interface SealInput {
  kind: number;
  id: Uint8Array;
  sentAtMs: number;
  body: Uint8Array;
}

export interface Opened {
  readonly kind: number;
  /** The sender's fingerprint as the sender claims it; trust it only after verifySender. */
  readonly from: Uint8Array;
  readonly fromHex: string;
  /** The sender's peer, host:port, where a reply goes. */
  readonly fromPeer: string;
  readonly id: Uint8Array;
  readonly sentAtMs: number;
  readonly body: Uint8Array;
  /** The blob's ephemeral X25519 public key (bound by the signature). */
  readonly ephemeral: Uint8Array;
  /** CBOR array of the first six fields, as signed. */
  readonly signedFields: Uint8Array;
  readonly signature: Uint8Array;
}

export type OpenResult = { ok: true; opened: Opened } | { ok: false; reason: SealOpenReason };
export type SealOpenReason =
  | 'too_short' | 'bad_bucket' | 'bad_version' | 'bad_ephemeral' | 'decrypt_failed' | 'bad_padding' | 'bad_inner';

function badInput(message: string): PeerpostError {
  return new PeerpostError('PEERPOST_SEAL_BAD_INPUT', message);
}

function checkContent(senderPeer: string, c: SealInput): void {
  if (typeof senderPeer !== 'string' || utf8.encode(senderPeer).length > SEAL_FROM_PEER_MAX_BYTES || !parseAddr(senderPeer)) {
    throw badInput(`senderPeer must be host:port of at most ${SEAL_FROM_PEER_MAX_BYTES} bytes`);
  }
  if (typeof c !== 'object' || c === null) throw badInput('content must be an object');
  if (!Number.isInteger(c.kind) || c.kind < 0 || c.kind > SEAL_KIND_MAX) throw badInput(`content.kind must be an integer 0..${SEAL_KIND_MAX}`);
  if (!(c.id instanceof Uint8Array) || c.id.length !== MESSAGE_ID_BYTES) throw badInput(`content.id must be ${MESSAGE_ID_BYTES} bytes`);
  if (!Number.isSafeInteger(c.sentAtMs) || c.sentAtMs < 0) throw badInput('content.sentAtMs must be a non-negative safe integer');
  if (!(c.body instanceof Uint8Array)) throw badInput('content.body must be a Uint8Array');
  if (c.body.length > SEAL_BODY_MAX_BYTES) {
    throw new PeerpostError('PEERPOST_SEAL_TOO_LARGE', `body of ${c.body.length} bytes exceeds SEAL_BODY_MAX_BYTES (${SEAL_BODY_MAX_BYTES})`);
  }
}

function kdf(shared: Uint8Array, ephemeral: Uint8Array, recipientX: Uint8Array, recipientFp: Uint8Array): { key: Buffer; nonce: Buffer } {
  const okm = Buffer.from(
    hkdfSync('sha256', shared, Buffer.concat([ephemeral, recipientX]), Buffer.concat([LABEL_SEAL_KDF_BYTES, recipientFp]), KDF_OUTPUT_BYTES),
  );
  return { key: okm.subarray(0, 32), nonce: okm.subarray(32) };
}

function signedMessage(recipientFp: Uint8Array, ephemeral: Uint8Array, signedFields: Uint8Array): Buffer {
  return Buffer.concat([LABEL_SEALED_SIG_BYTES, recipientFp, ephemeral, signedFields]);
}

/** Seal content from `sender` to the holder of `recipientCert`. Throws PeerpostError on misuse. */
export function seal(p: { sender: Identity; senderPeer: string; recipientCert: Uint8Array; content: SealInput; random: Random }): Uint8Array {
  checkContent(p.senderPeer, p.content);
  const recipient = certKeys(p.recipientCert);
  if (!recipient) throw new PeerpostError('PEERPOST_BAD_CERT', 'recipient certificate does not parse, is not Ed25519, or its self-signature fails');
  const secret = p.random(X25519_KEY_BYTES);
  if (!(secret instanceof Uint8Array) || secret.length !== X25519_KEY_BYTES) throw badInput('random must return the requested number of bytes');

  const c = p.content;
  const signedFields = cborEncode([c.kind, p.sender.fingerprint, p.senderPeer, c.id, c.sentAtMs, c.body]);
  const ephPrivate = x25519PrivateFromRaw(secret);
  const ephemeral = rawPublic(createPublicKey(ephPrivate));
  const sig = p.sender.sign(signedMessage(recipient.fingerprint, ephemeral, signedFields));
  // [six fields..., sig] shares the six fields' bytes: replace the array head 0x86 by 0x87.
  const inner = Buffer.concat([Uint8Array.of(0x87), signedFields.subarray(1), cborEncode(sig)]);

  const bucket = SEAL_BUCKETS_BYTES.find((b) => b - SEAL_OVERHEAD_BYTES - SEAL_LENGTH_PREFIX_BYTES >= inner.length);
  if (bucket === undefined) {
    throw new PeerpostError('PEERPOST_SEAL_TOO_LARGE', `sealed content of ${inner.length} bytes does not fit in ${BLOB_MAX_BYTES} bytes`);
  }
  const plaintext = Buffer.alloc(bucket - SEAL_OVERHEAD_BYTES);
  plaintext.writeUInt16BE(inner.length, 0);
  inner.copy(plaintext, SEAL_LENGTH_PREFIX_BYTES);

  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey: ephPrivate, publicKey: recipient.xPublic });
  } catch (e) {
    throw new PeerpostError('PEERPOST_BAD_CERT', 'recipient key gives no X25519 shared secret (small-order point)', { cause: e });
  }
  const { key, nonce } = kdf(shared, ephemeral, recipient.xPublicRaw, recipient.fingerprint);
  const header = Buffer.concat([Uint8Array.of(SEAL_VERSION), ephemeral]);
  const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: SEAL_TAG_BYTES });
  cipher.setAAD(header, { plaintextLength: plaintext.length });
  const body = Buffer.concat([header, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
}

/** Open a blob sealed to `recipient`. Never throws. The sender is not yet authenticated: see verifySender. */
export function openSealed(recipient: Identity, blob: Uint8Array): OpenResult {
  try {
    return openInner(recipient, blob);
  } catch {
    return { ok: false, reason: 'decrypt_failed' };
  }
}

function openInner(recipient: Identity, blob: Uint8Array): OpenResult {
  if (!(blob instanceof Uint8Array) || blob.length < SEAL_BUCKETS_BYTES[0]!) return { ok: false, reason: 'too_short' };
  if (!SEAL_BUCKETS_BYTES.includes(blob.length)) return { ok: false, reason: 'bad_bucket' };
  if (blob[0] !== SEAL_VERSION) return { ok: false, reason: 'bad_version' };
  const ephemeral = blob.slice(1, 1 + X25519_KEY_BYTES);
  const mine = identityXKeys(recipient);
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey: mine.xPrivate, publicKey: x25519PublicFromRaw(ephemeral) });
  } catch {
    return { ok: false, reason: 'bad_ephemeral' };
  }
  const { key, nonce } = kdf(shared, ephemeral, mine.xPublicRaw, recipient.fingerprint);
  const ctEnd = blob.length - SEAL_TAG_BYTES;
  let plaintext: Buffer;
  try {
    const decipher = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: SEAL_TAG_BYTES });
    decipher.setAAD(blob.subarray(0, 1 + X25519_KEY_BYTES), { plaintextLength: ctEnd - 1 - X25519_KEY_BYTES });
    decipher.setAuthTag(blob.subarray(ctEnd));
    plaintext = Buffer.concat([decipher.update(blob.subarray(1 + X25519_KEY_BYTES, ctEnd)), decipher.final()]);
  } catch {
    return { ok: false, reason: 'decrypt_failed' };
  }
  const innerLength = plaintext.readUInt16BE(0);
  const innerEnd = SEAL_LENGTH_PREFIX_BYTES + innerLength;
  if (innerEnd > plaintext.length || plaintext.subarray(innerEnd).some((b) => b !== 0)) return { ok: false, reason: 'bad_padding' };
  const inner = new Uint8Array(plaintext.subarray(SEAL_LENGTH_PREFIX_BYTES, innerEnd));
  const opened = parseInner(inner, ephemeral);
  return opened ? { ok: true, opened } : { ok: false, reason: 'bad_inner' };
}

function parseInner(inner: Uint8Array, ephemeral: Uint8Array): Opened | null {
  const d = cborDecodeChecked(inner);
  if (!d.ok || !Array.isArray(d.value) || d.value.length !== 7) return null;
  const [kind, from, fromPeer, id, sentAtMs, body, sig] = d.value as unknown[];
  if (typeof kind !== 'number' || kind > SEAL_KIND_MAX) return null;
  if (!(from instanceof Uint8Array) || from.length !== FINGERPRINT_BYTES) return null;
  if (typeof fromPeer !== 'string' || utf8.encode(fromPeer).length > SEAL_FROM_PEER_MAX_BYTES || !parseAddr(fromPeer)) return null;
  if (!(id instanceof Uint8Array) || id.length !== MESSAGE_ID_BYTES) return null;
  if (typeof sentAtMs !== 'number' || !Number.isSafeInteger(sentAtMs)) return null;
  if (!(body instanceof Uint8Array)) return null;
  if (!(sig instanceof Uint8Array) || sig.length !== SIGNATURE_BYTES) return null;
  // The signature is the last item, encoded as 0x58 0x40 + 64 bytes: the six fields before it are
  // exactly the signed array once its head 0x87 reads 0x86.
  const signedFields = new Uint8Array(inner.length - SIG_FIELD_BYTES);
  signedFields.set(inner.subarray(0, inner.length - SIG_FIELD_BYTES));
  signedFields[0] = 0x86;
  return {
    kind,
    from: new Uint8Array(from),
    fromHex: toHex(from),
    fromPeer,
    id: new Uint8Array(id),
    sentAtMs,
    body: new Uint8Array(body),
    ephemeral,
    signedFields,
    signature: new Uint8Array(sig),
  };
}

/**
 * True when `senderCert` is the certificate whose SHA-256 is `opened.from` and its key signed this
 * content for `recipientFingerprint` under this blob's ephemeral key. Never throws.
 */
export function verifySender(opened: Opened, senderCert: Uint8Array, recipientFingerprint: Uint8Array): boolean {
  try {
    if (!(recipientFingerprint instanceof Uint8Array) || recipientFingerprint.length !== FINGERPRINT_BYTES) return false;
    const keys = certKeys(senderCert);
    if (!keys || !Buffer.from(keys.fingerprint).equals(opened.from)) return false;
    return verify(null, signedMessage(recipientFingerprint, opened.ephemeral, opened.signedFields), keys.edPublic, opened.signature);
  } catch {
    return false;
  }
}
