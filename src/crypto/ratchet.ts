/**
 * Ratcheted sessions between two clients: the Double Ratchet with header encryption (Perrin and
 * Marlinspike, "The Double Ratchet Algorithm", revision 4, sections 3 and 4), from standard parts:
 *   - DH ratchet over X25519 (RFC 7748), done by node:crypto;
 *   - KDF_RK: HKDF-SHA256 (RFC 5869), salt = root key, ikm = DH output, 96 bytes split into the
 *     next root key, a chain key and a next header key (section 4.2 of the specification);
 *   - KDF_CK: HMAC-SHA256 (RFC 2104) of the chain key over 0x01 (message key) and 0x02 (next chain
 *     key), as the specification recommends (section 5.2);
 *   - ENCRYPT: ChaCha20-Poly1305 (RFC 8439) with key and nonce from HKDF-SHA256 of the message key;
 *     HENCRYPT: ChaCha20-Poly1305 under the header key with a random 96-bit nonce.
 * The session starts from one X25519 of the initiator's first ratchet key against the responder's
 * static key (the one sealing uses), carried in the initiator's sealed CARD; why: docs/SECURITY.md,
 * "Forward secrecy". Byte layouts: docs/PROTOCOL.md section 21.
 *
 * Pure and sans-I/O: randomness comes from the caller's `Random`, the time of a decryption
 * (`nowMs`) from the caller; no clock is read. Functions never change the state they are given:
 * each returns a new state, which the caller stores together with the message it belongs to. A
 * decryption that fails returns no state, so a failed message changes nothing.
 *
 * Bounds: at most RATCHET_SKIP_PER_MESSAGE_MAX message keys are skipped for one message (else it
 * fails `too_far_ahead`); at most RATCHET_SKIPPED_KEYS_MAX skipped keys are kept per session (the
 * oldest are dropped first) and none older than RATCHET_SKIPPED_KEY_AGE_MAX_MS; a message whose key
 * was dropped fails `key_gone`, like a duplicate of a message already opened. Every message key is
 * deleted when used, so no message opens twice.
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, type KeyObject } from 'node:crypto';
import { PeerpostError } from '../core/errors.js';
import type { Random } from '../core/types.js';
import { FINGERPRINT_BYTES } from '../protocol/constants.js';
import { SEAL_BUCKETS_BYTES } from './seal.js';
import { x25519, x25519KeyPair } from './session.js';

/** First byte of every ratchet message; sealed blobs start with SEAL_VERSION (1). */
export const RATCHET_VERSION = 2;
export const RATCHET_KEY_BYTES = 32;
export const RATCHET_NONCE_BYTES = 12;
export const RATCHET_TAG_BYTES = 16;
/** Header plaintext: ratchet public key (32) || PN (uint32 BE) || N (uint32 BE). */
export const RATCHET_HEADER_BYTES = 32 + 4 + 4;
/** Encrypted header: nonce (12) || ciphertext (40) || tag (16). */
export const RATCHET_ENC_HEADER_BYTES = RATCHET_NONCE_BYTES + RATCHET_HEADER_BYTES + RATCHET_TAG_BYTES;
/** version (1) + encrypted header (68) + body tag (16). */
export const RATCHET_OVERHEAD_BYTES = 1 + RATCHET_ENC_HEADER_BYTES + RATCHET_TAG_BYTES;
/** The padded plaintext starts with the payload length, uint16 big-endian; zero bytes follow it. */
export const RATCHET_LENGTH_PREFIX_BYTES = 2;
/** The largest payload: the largest bucket less the overhead and the length prefix (1013). */
export const RATCHET_PAYLOAD_MAX_BYTES = SEAL_BUCKETS_BYTES[SEAL_BUCKETS_BYTES.length - 1]! - RATCHET_OVERHEAD_BYTES - RATCHET_LENGTH_PREFIX_BYTES;
/** MAX_SKIP of the specification: most message keys one received message may make us skip. */
export const RATCHET_SKIP_PER_MESSAGE_MAX = 500;
/** Most skipped message keys kept per session; beyond it the oldest are dropped. */
export const RATCHET_SKIPPED_KEYS_MAX = 1000;
/** Skipped message keys older than this are dropped (8 days: the client's dedupe window). */
export const RATCHET_SKIPPED_KEY_AGE_MAX_MS = 8 * 24 * 3600 * 1000;
/** Largest message counter (uint32); a sending chain that reaches it refuses to send. */
export const RATCHET_COUNTER_MAX = 0xffffffff;

/** Domain labels (ASCII, no terminator). */
export const LABEL_RATCHET_START = 'peerpost/1 ratchet start';
export const LABEL_RATCHET_ROOT = 'peerpost/1 ratchet root';
export const LABEL_RATCHET_MESSAGE = 'peerpost/1 ratchet message';
export const LABEL_RATCHET_AD = 'peerpost/1 ratchet ad';

const START_LABEL = Buffer.from(LABEL_RATCHET_START, 'ascii');
const ROOT_LABEL = Buffer.from(LABEL_RATCHET_ROOT, 'ascii');
const MESSAGE_LABEL = Buffer.from(LABEL_RATCHET_MESSAGE, 'ascii');
const AD_LABEL = Buffer.from(LABEL_RATCHET_AD, 'ascii');
const MESSAGE_SALT = Buffer.alloc(32);
const CK_MESSAGE = Uint8Array.of(0x01);
const CK_CHAIN = Uint8Array.of(0x02);
const HEADER_END = 1 + RATCHET_ENC_HEADER_BYTES;

/** A message key kept for a message that has not arrived yet. */
export interface SkippedKey {
  /** The header key of the chain it belongs to. */
  readonly hk: Uint8Array;
  readonly n: number;
  readonly mk: Uint8Array;
  /** `nowMs` of the decryption that skipped it. */
  readonly atMs: number;
}

/**
 * One party's state of a session, the variables of the specification (section 3.2 and 4.3). Treat
 * it as opaque and immutable; store it with encodeRatchetState (ratchet-state.ts).
 */
export interface RatchetState {
  readonly initiatorFingerprint: Uint8Array;
  readonly responderFingerprint: Uint8Array;
  /** DHs: our current ratchet secret (32 raw bytes) and its public key. */
  readonly dhsSecret: Uint8Array;
  readonly dhsPublic: Uint8Array;
  /** DHr: the other side's current ratchet public key, null before the first one is known. */
  readonly dhr: Uint8Array | null;
  readonly rk: Uint8Array;
  readonly cks: Uint8Array | null;
  readonly ckr: Uint8Array | null;
  readonly ns: number;
  readonly nr: number;
  readonly pn: number;
  readonly hks: Uint8Array | null;
  readonly hkr: Uint8Array | null;
  readonly nhks: Uint8Array;
  readonly nhkr: Uint8Array;
  /** Oldest first. */
  readonly skipped: readonly SkippedKey[];
}

type Mutable = { -readonly [K in keyof RatchetState]: RatchetState[K] } & { skipped: SkippedKey[] };

export type RatchetOpenReason =
  | 'too_short' | 'bad_bucket' | 'bad_version'
  /** No header key of this session opens the header: another session's message, or too old. */
  | 'not_this_session'
  /** The header opens but the message key is gone: a duplicate, or dropped at a bound. */
  | 'key_gone'
  /** Opening it would skip more than RATCHET_SKIP_PER_MESSAGE_MAX keys in one chain. */
  | 'too_far_ahead'
  /** The header carries a ratchet key that gives no X25519 shared secret. */
  | 'bad_ratchet_key'
  | 'decrypt_failed' | 'bad_padding';

export type RatchetOpenResult = { ok: true; state: RatchetState; payload: Uint8Array } | { ok: false; reason: RatchetOpenReason };

function badInput(message: string): PeerpostError {
  return new PeerpostError('PEERPOST_RATCHET_BAD_INPUT', message);
}

function checkBytes(v: unknown, n: number, name: string): asserts v is Uint8Array {
  if (!(v instanceof Uint8Array) || v.length !== n) throw badInput(`${name} must be ${n} bytes`);
}

function draw(random: Random, n: number): Uint8Array {
  if (typeof random !== 'function') throw badInput('random must be a function');
  const r = random(n);
  if (!(r instanceof Uint8Array) || r.length !== n) throw badInput('random must return the requested number of bytes');
  return r;
}

function hkdf(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, n: number): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', ikm, salt, info, n));
}

/** KDF_RK with header keys: (root key, DH output) -> (root key, chain key, next header key). */
export function kdfRk(rk: Uint8Array, dhOut: Uint8Array): [Uint8Array, Uint8Array, Uint8Array] {
  const okm = hkdf(dhOut, rk, ROOT_LABEL, 96);
  return [okm.slice(0, 32), okm.slice(32, 64), okm.slice(64, 96)];
}

/** KDF_CK: chain key -> (next chain key, message key). */
export function kdfCk(ck: Uint8Array): [Uint8Array, Uint8Array] {
  const mk = new Uint8Array(createHmac('sha256', ck).update(CK_MESSAGE).digest());
  const next = new Uint8Array(createHmac('sha256', ck).update(CK_CHAIN).digest());
  return [next, mk];
}

/** The AEAD key and nonce of one message key. */
export function messageKeys(mk: Uint8Array): { key: Uint8Array; nonce: Uint8Array } {
  const okm = hkdf(mk, MESSAGE_SALT, MESSAGE_LABEL, 44);
  return { key: okm.subarray(0, 32), nonce: okm.subarray(32) };
}

/** AD of every message: label || initiator fingerprint || responder fingerprint. */
export function associatedData(s: Pick<RatchetState, 'initiatorFingerprint' | 'responderFingerprint'>): Buffer {
  return Buffer.concat([AD_LABEL, s.initiatorFingerprint, s.responderFingerprint]);
}

function seal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Buffer {
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: RATCHET_TAG_BYTES });
  c.setAAD(aad, { plaintextLength: plaintext.length });
  return Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
}

function open(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Buffer | null {
  try {
    const end = sealed.length - RATCHET_TAG_BYTES;
    const d = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: RATCHET_TAG_BYTES });
    d.setAAD(aad, { plaintextLength: end });
    d.setAuthTag(sealed.subarray(end));
    return Buffer.concat([d.update(sealed.subarray(0, end)), d.final()]);
  } catch {
    return null;
  }
}

interface Header {
  readonly dh: Uint8Array;
  readonly pn: number;
  readonly n: number;
}

function headerAad(blob: Uint8Array, ad: Uint8Array): Buffer {
  return Buffer.concat([blob.subarray(0, 1), ad]);
}

/** HDECRYPT: the header of `blob` under `hk`, or null. */
function openHeader(hk: Uint8Array, blob: Uint8Array, ad: Uint8Array): Header | null {
  const plain = open(hk, blob.subarray(1, 1 + RATCHET_NONCE_BYTES), headerAad(blob, ad), blob.subarray(1 + RATCHET_NONCE_BYTES, HEADER_END));
  if (!plain) return null;
  return { dh: new Uint8Array(plain.subarray(0, 32)), pn: plain.readUInt32BE(32), n: plain.readUInt32BE(36) };
}

/** node:crypto private keys of ratchet secrets made or used here, by the secret's array (an import costs a scalar multiplication). */
const privateKeys = new WeakMap<Uint8Array, KeyObject>();

/** The X25519 key pair of a ratchet secret; its private key is kept for the DH steps to come. */
export function ratchetKeyPair(secret: Uint8Array): { privateKey: KeyObject; publicKey: Uint8Array } {
  const pair = x25519KeyPair(secret);
  privateKeys.set(secret, pair.privateKey);
  return pair;
}

function dh(secret: Uint8Array, peerPublic: Uint8Array): Uint8Array | null {
  const privateKey = privateKeys.get(secret) ?? ratchetKeyPair(secret).privateKey;
  return x25519(privateKey, peerPublic);
}

function startKeys(shared: Uint8Array, start: Uint8Array, responderX: Uint8Array, fpI: Uint8Array, fpR: Uint8Array): [Uint8Array, Uint8Array, Uint8Array] {
  const okm = hkdf(shared, Buffer.concat([start, responderX]), Buffer.concat([START_LABEL, fpI, fpR]), 96);
  return [okm.slice(0, 32), okm.slice(32, 64), okm.slice(64, 96)];
}

/**
 * The initiator's side (the party the specification calls Bob): draws the first ratchet key,
 * whose public half `start` goes to the responder inside the initiator's sealed CARD. The state
 * can open the responder's first message; it cannot send until then (the initiator seals its
 * first messages as before). Throws PeerpostError on bad input.
 */
export function startRatchet(p: {
  initiatorFingerprint: Uint8Array;
  responderFingerprint: Uint8Array;
  /** The responder's static X25519 public key (certKeys(cert).xPublicRaw). */
  responderXPublic: Uint8Array;
  random: Random;
}): { state: RatchetState; start: Uint8Array } {
  checkBytes(p.initiatorFingerprint, FINGERPRINT_BYTES, 'initiatorFingerprint');
  checkBytes(p.responderFingerprint, FINGERPRINT_BYTES, 'responderFingerprint');
  checkBytes(p.responderXPublic, RATCHET_KEY_BYTES, 'responderXPublic');
  const secret = draw(p.random, RATCHET_KEY_BYTES);
  const pair = ratchetKeyPair(secret);
  const start = pair.publicKey;
  const shared = x25519(pair.privateKey, p.responderXPublic);
  if (!shared) throw new PeerpostError('PEERPOST_RATCHET_BAD_KEY', 'responder key gives no X25519 shared secret (small-order point)');
  const [sk, hka, nhkb] = startKeys(shared, start, p.responderXPublic, p.initiatorFingerprint, p.responderFingerprint);
  const state: RatchetState = {
    initiatorFingerprint: new Uint8Array(p.initiatorFingerprint), responderFingerprint: new Uint8Array(p.responderFingerprint),
    dhsSecret: new Uint8Array(secret), dhsPublic: start, dhr: null, rk: sk, cks: null, ckr: null, ns: 0, nr: 0, pn: 0,
    hks: null, hkr: null, nhks: nhkb, nhkr: hka, skipped: [],
  };
  return { state, start };
}

/**
 * The responder's side (the party the specification calls Alice), on a CARD that carries the
 * initiator's `start`: the state can send at once. Throws PeerpostError on bad input, and
 * PEERPOST_RATCHET_BAD_KEY for a start key that gives no shared secret.
 */
export function acceptRatchet(p: {
  initiatorFingerprint: Uint8Array;
  responderFingerprint: Uint8Array;
  /** The responder's static X25519 key (identityXKeys(identity)). */
  responderXPrivate: KeyObject;
  responderXPublic: Uint8Array;
  start: Uint8Array;
  random: Random;
}): RatchetState {
  checkBytes(p.initiatorFingerprint, FINGERPRINT_BYTES, 'initiatorFingerprint');
  checkBytes(p.responderFingerprint, FINGERPRINT_BYTES, 'responderFingerprint');
  checkBytes(p.responderXPublic, RATCHET_KEY_BYTES, 'responderXPublic');
  checkBytes(p.start, RATCHET_KEY_BYTES, 'start');
  const shared = x25519(p.responderXPrivate, p.start);
  if (!shared) throw new PeerpostError('PEERPOST_RATCHET_BAD_KEY', 'start key gives no X25519 shared secret (small-order point)');
  const [sk, hka, nhkb] = startKeys(shared, p.start, p.responderXPublic, p.initiatorFingerprint, p.responderFingerprint);
  const secret = new Uint8Array(draw(p.random, RATCHET_KEY_BYTES));
  const pair = ratchetKeyPair(secret);
  const [rk, cks, nhks] = kdfRk(sk, x25519(pair.privateKey, p.start)!);
  return {
    initiatorFingerprint: new Uint8Array(p.initiatorFingerprint), responderFingerprint: new Uint8Array(p.responderFingerprint),
    dhsSecret: secret, dhsPublic: pair.publicKey, dhr: new Uint8Array(p.start), rk, cks, ckr: null, ns: 0, nr: 0, pn: 0,
    hks: hka, hkr: null, nhks, nhkr: nhkb, skipped: [],
  };
}

/** True when this state can send (the responder always; the initiator after the first reply). */
export function ratchetCanSend(state: RatchetState): boolean {
  return state.cks !== null && state.hks !== null;
}

/**
 * RatchetEncryptHE: the message carrying `payload` (at most RATCHET_PAYLOAD_MAX_BYTES), padded to
 * the smallest of SEAL_BUCKETS_BYTES that fits, and the state after it.
 */
export function ratchetEncrypt(state: RatchetState, payload: Uint8Array, random: Random): { state: RatchetState; blob: Uint8Array } {
  if (!(payload instanceof Uint8Array)) throw badInput('payload must be a Uint8Array');
  if (payload.length > RATCHET_PAYLOAD_MAX_BYTES) {
    throw new PeerpostError('PEERPOST_RATCHET_TOO_LARGE', `payload of ${payload.length} bytes exceeds RATCHET_PAYLOAD_MAX_BYTES (${RATCHET_PAYLOAD_MAX_BYTES})`);
  }
  if (!state.cks || !state.hks) {
    throw new PeerpostError('PEERPOST_RATCHET_NOT_READY', 'the initiator cannot send in a session before the first message from the responder; seal instead');
  }
  if (state.ns >= RATCHET_COUNTER_MAX) throw new PeerpostError('PEERPOST_RATCHET_EXHAUSTED', 'the sending chain reached RATCHET_COUNTER_MAX; start a new session');
  const nonce = draw(random, RATCHET_NONCE_BYTES);
  const [cks, mk] = kdfCk(state.cks);
  const ad = associatedData(state);
  const bucket = SEAL_BUCKETS_BYTES.find((b) => b - RATCHET_OVERHEAD_BYTES - RATCHET_LENGTH_PREFIX_BYTES >= payload.length)!;

  const header = Buffer.alloc(RATCHET_HEADER_BYTES);
  header.set(state.dhsPublic, 0);
  header.writeUInt32BE(state.pn, 32);
  header.writeUInt32BE(state.ns, 36);
  const version = Uint8Array.of(RATCHET_VERSION);
  const encHeader = seal(state.hks, nonce, Buffer.concat([version, ad]), header);
  const head = Buffer.concat([version, nonce, encHeader]);

  const plaintext = Buffer.alloc(bucket - RATCHET_OVERHEAD_BYTES);
  plaintext.writeUInt16BE(payload.length, 0);
  plaintext.set(payload, RATCHET_LENGTH_PREFIX_BYTES);
  const k = messageKeys(mk);
  const body = Buffer.concat([head, seal(k.key, k.nonce, Buffer.concat([ad, head]), plaintext)]);
  return {
    state: { ...state, cks, ns: state.ns + 1 },
    blob: new Uint8Array(body.buffer, body.byteOffset, body.byteLength),
  };
}

class Refused extends Error {
  constructor(readonly reason: RatchetOpenReason) {
    super(reason);
  }
}

/**
 * RatchetDecryptHE: opens `blob` with this session. On success returns the payload and the new
 * state (store both together); on failure a reason and no state: the given state stays valid and
 * unchanged. Never throws on anything in `blob`; throws PeerpostError on a bad nowMs or random.
 */
export function ratchetDecrypt(state: RatchetState, blob: Uint8Array, nowMs: number, random: Random): RatchetOpenResult {
  if (!Number.isSafeInteger(nowMs) || nowMs < 0) throw badInput('nowMs must be a non-negative safe integer');
  if (typeof random !== 'function') throw badInput('random must be a function');
  if (!(blob instanceof Uint8Array) || blob.length < SEAL_BUCKETS_BYTES[0]!) return { ok: false, reason: 'too_short' };
  if (!SEAL_BUCKETS_BYTES.includes(blob.length)) return { ok: false, reason: 'bad_bucket' };
  if (blob[0] !== RATCHET_VERSION) return { ok: false, reason: 'bad_version' };
  const s: Mutable = { ...state, skipped: state.skipped.filter((k) => nowMs - k.atMs <= RATCHET_SKIPPED_KEY_AGE_MAX_MS) };
  const ad = associatedData(s);
  try {
    const mk = skippedKey(s, blob, ad) ?? nextKey(s, blob, ad, nowMs, random);
    const payload = openBody(mk, blob, ad);
    if (s.skipped.length > RATCHET_SKIPPED_KEYS_MAX) s.skipped = s.skipped.slice(s.skipped.length - RATCHET_SKIPPED_KEYS_MAX);
    return { ok: true, state: s, payload };
  } catch (e) {
    if (e instanceof Refused) return { ok: false, reason: e.reason };
    throw e;
  }
}

/** TrySkippedMessageKeysHE: the skipped key of this message, removed from `s`, or null. */
function skippedKey(s: Mutable, blob: Uint8Array, ad: Uint8Array): Uint8Array | null {
  const tried = new Set<string>();
  let opened = false;
  for (const k of s.skipped) {
    const id = Buffer.from(k.hk).toString('hex');
    if (tried.has(id)) continue;
    tried.add(id);
    const h = openHeader(k.hk, blob, ad);
    if (!h) continue;
    opened = true;
    const i = s.skipped.findIndex((x) => x.n === h.n && Buffer.from(x.hk).equals(k.hk));
    if (i < 0) continue;
    const mk = s.skipped[i]!.mk;
    s.skipped = s.skipped.filter((_, j) => j !== i);
    return mk;
  }
  // The header is of a chain we keep skipped keys of, but this counter's key is not kept.
  if (opened && !(s.hkr && openHeader(s.hkr, blob, ad)) && !openHeader(s.nhkr, blob, ad)) throw new Refused('key_gone');
  return null;
}

/** DecryptHeader, then the DH ratchet step if the header is under the next header key. */
function nextKey(s: Mutable, blob: Uint8Array, ad: Uint8Array, nowMs: number, random: Random): Uint8Array {
  let h = s.hkr ? openHeader(s.hkr, blob, ad) : null;
  if (h) {
    if (h.n < s.nr) throw new Refused('key_gone');
  } else {
    h = openHeader(s.nhkr, blob, ad);
    if (!h) throw new Refused('not_this_session');
    skip(s, h.pn, nowMs);
    dhRatchet(s, h, random);
  }
  skip(s, h.n, nowMs);
  const [ckr, mk] = kdfCk(s.ckr!);
  s.ckr = ckr;
  s.nr += 1;
  return mk;
}

/** SkipMessageKeysHE. */
function skip(s: Mutable, until: number, nowMs: number): void {
  if (s.nr + RATCHET_SKIP_PER_MESSAGE_MAX < until) throw new Refused('too_far_ahead');
  if (!s.ckr || !s.hkr) return;
  const added: SkippedKey[] = [];
  let ck = s.ckr;
  while (s.nr < until) {
    const [next, mk] = kdfCk(ck);
    added.push({ hk: s.hkr, n: s.nr, mk, atMs: nowMs });
    ck = next;
    s.nr += 1;
  }
  s.ckr = ck;
  if (added.length) s.skipped = [...s.skipped, ...added];
}

/** DHRatchetHE. */
function dhRatchet(s: Mutable, h: Header, random: Random): void {
  s.pn = s.ns;
  s.ns = 0;
  s.nr = 0;
  s.dhr = h.dh;
  s.hks = s.nhks;
  s.hkr = s.nhkr;
  const received = dh(s.dhsSecret, s.dhr);
  if (!received) throw new Refused('bad_ratchet_key');
  [s.rk, s.ckr, s.nhkr] = kdfRk(s.rk, received);
  s.dhsSecret = new Uint8Array(draw(random, RATCHET_KEY_BYTES));
  const pair = ratchetKeyPair(s.dhsSecret);
  s.dhsPublic = pair.publicKey;
  [s.rk, s.cks, s.nhks] = kdfRk(s.rk, x25519(pair.privateKey, s.dhr)!);
}

function openBody(mk: Uint8Array, blob: Uint8Array, ad: Uint8Array): Uint8Array {
  const k = messageKeys(mk);
  const plain = open(k.key, k.nonce, Buffer.concat([ad, blob.subarray(0, HEADER_END)]), blob.subarray(HEADER_END));
  if (!plain) throw new Refused('decrypt_failed');
  const length = plain.readUInt16BE(0);
  const end = RATCHET_LENGTH_PREFIX_BYTES + length;
  if (end > plain.length || plain.subarray(end).some((b) => b !== 0)) throw new Refused('bad_padding');
  return new Uint8Array(plain.subarray(RATCHET_LENGTH_PREFIX_BYTES, end));
}
