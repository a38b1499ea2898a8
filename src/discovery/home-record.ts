/**
 * The signed home record (docs/PROTOCOL.md, "Home records"): how a client tells senders which
 * peers it is registered with, published on HyperDHT so that its fingerprint alone finds it.
 *
 *   body      = CBOR [1, fingerprint(32), seq, timeMs, [[host, port, peerFingerprint(32)], ...]]
 *   sigInput  = "peerpost/2 home-record" || body
 *   value     = CBOR [body, signature(64), certificate DER]      (the DHT value)
 *   topic     = SHA-256("peerpost/2 home-topic" || fingerprint)  (where the holder announces)
 *
 * Ed25519 (RFC 8032) through node:crypto. A value is accepted only when the SHA-256 of its
 * certificate is the fingerprint asked for, the certificate's key verifies the signature and (for
 * the DHT) is the key the value was stored under, and its seq is newer than the one held.
 * Bounds: HOME_PEERS_MAX peers, HOME_VALUE_BYTES_MAX bytes of value; an encoder refuses more
 * (PeerpostError PEERPOST_HOME_RECORD), a decoder returns a reason. decode never throws.
 */
import { createHash } from 'node:crypto';
import type { HomePeer, HomeRecord } from '../core/home.js';
import { PeerpostError } from '../core/errors.js';
import { cborDecodeChecked, cborEncode, type CborValue } from '../protocol/cbor.js';
import { fingerprintOf, readCertificateKey, signWith, verifyWith, type Identity } from '../identity/certificate.js';
import { rawPublic } from '../crypto/keys.js';
import { parseAddr } from '../core/types.js';

export const LABEL_HOME_RECORD = 'peerpost/2 home-record';
export const LABEL_HOME_TOPIC = 'peerpost/2 home-topic';
export const HOME_RECORD_VERSION = 1;
/** Most peers one record lists; an encoder refuses more, a decoder drops the record. */
export const HOME_PEERS_MAX = 8;
/** Largest DHT value (body, signature and certificate); fits one HyperDHT datagram. */
export const HOME_VALUE_BYTES_MAX = 1000;
/** Longest host text of a peer (an IPv6 literal is at most 45 characters). */
export const HOME_HOST_CHARS_MAX = 64;
const FP_BYTES = 32;
const SIG_BYTES = 64;

export type HomeRecordReason =
  | 'bad_value'
  | 'too_large'
  | 'bad_body'
  | 'bad_version'
  | 'too_many_peers'
  | 'bad_peer'
  | 'wrong_fingerprint'
  | 'bad_certificate'
  | 'wrong_key'
  | 'bad_signature'
  | 'stale_seq';

/** A record that verified, with the certificate that signed it. */
export interface VerifiedHome {
  readonly record: HomeRecord;
  readonly cert: Uint8Array;
  /** The certificate's raw Ed25519 public key (32 bytes): the DHT key of the value. */
  readonly publicKey: Uint8Array;
  /** The value as published, byte for byte. */
  readonly value: Uint8Array;
}

export type HomeRecordCheck = { ok: true; home: VerifiedHome } | { ok: false; reason: HomeRecordReason; detail: string };

const labelRecord = Buffer.from(LABEL_HOME_RECORD, 'ascii');
const labelTopic = Buffer.from(LABEL_HOME_TOPIC, 'ascii');

/** The 32-byte DHT topic a client announces its home under. */
export function homeTopic(fingerprint: Uint8Array): Uint8Array {
  if (!(fingerprint instanceof Uint8Array) || fingerprint.length !== FP_BYTES) throw new TypeError('fingerprint must be 32 bytes');
  return new Uint8Array(createHash('sha256').update(labelTopic).update(fingerprint).digest());
}

/** The canonical CBOR body of a record; throws PEERPOST_HOME_RECORD for a record out of bounds. */
export function encodeHomeBody(r: HomeRecord): Uint8Array {
  const bad = recordProblem(r);
  if (bad) throw new PeerpostError('PEERPOST_HOME_RECORD', `home record: ${bad}`);
  const peers: CborValue[] = r.peers.map((p) => [p.host, p.port, p.fingerprint]);
  return cborEncode([HOME_RECORD_VERSION, r.fingerprint, r.seq, r.timeMs, peers]);
}

/** What the identity signs: the label, then the body. */
export function homeSignatureInput(body: Uint8Array): Uint8Array {
  return new Uint8Array(Buffer.concat([labelRecord, body]));
}

/** The signed DHT value of `record`, which must be `identity`'s. */
export function signHomeRecord(identity: Identity, record: HomeRecord): Uint8Array {
  if (!Buffer.from(record.fingerprint).equals(Buffer.from(identity.fingerprint))) {
    throw new PeerpostError('PEERPOST_HOME_RECORD', 'home record: fingerprint is not the identity\'s');
  }
  const body = encodeHomeBody(record);
  const sig = signWith(identity.privateKey, homeSignatureInput(body));
  const value = cborEncode([body, sig, identity.cert]);
  if (value.length > HOME_VALUE_BYTES_MAX) {
    throw new PeerpostError('PEERPOST_HOME_RECORD', `home record: ${value.length} bytes, more than ${HOME_VALUE_BYTES_MAX} (fewer peers, or a smaller certificate)`);
  }
  return value;
}

/** The raw 32-byte Ed25519 public key of an identity (its DHT key). */
export function identityPublicKey(identity: Identity): Uint8Array {
  return rawPublic(identity.publicKey);
}

export interface VerifyOptions {
  /** The fingerprint the sender asked for. */
  fingerprint: Uint8Array;
  /** The DHT key the value came from, when it came from the DHT: it must be the certificate's. */
  publicKey?: Uint8Array;
  /** The seq of the record already held: only a greater one is accepted. */
  heldSeq?: number;
}

/** Check a DHT value against what was asked. Never throws. */
export function verifyHomeValue(value: Uint8Array, o: VerifyOptions): HomeRecordCheck {
  const no = (reason: HomeRecordReason, detail: string): HomeRecordCheck => ({ ok: false, reason, detail });
  if (!(value instanceof Uint8Array)) return no('bad_value', 'value is not bytes');
  if (value.length > HOME_VALUE_BYTES_MAX) return no('too_large', `${value.length} bytes, more than ${HOME_VALUE_BYTES_MAX}`);
  const outer = cborDecodeChecked(value);
  if (!outer.ok) return no('bad_value', outer.reason);
  const v = outer.value;
  if (!Array.isArray(v) || v.length !== 3 || !(v[0] instanceof Uint8Array) || !(v[1] instanceof Uint8Array) || !(v[2] instanceof Uint8Array)) {
    return no('bad_value', 'value must be [body, signature, certificate]');
  }
  const [body, sig, cert] = v as [Uint8Array, Uint8Array, Uint8Array];
  if (sig.length !== SIG_BYTES) return no('bad_value', 'signature must be 64 bytes');
  if (!Buffer.from(fingerprintOf(cert)).equals(Buffer.from(o.fingerprint))) return no('wrong_fingerprint', 'the certificate is not the one of this fingerprint');
  const key = readCertificateKey(cert);
  if (!key.ok) return no('bad_certificate', key.detail);
  const publicKey = rawPublic(key.publicKey);
  if (o.publicKey && !Buffer.from(o.publicKey).equals(Buffer.from(publicKey))) return no('wrong_key', 'the value is stored under another key than the certificate\'s');
  if (!verifyWith(key.publicKey, homeSignatureInput(body), sig)) return no('bad_signature', 'the record signature does not verify with the certificate\'s key');
  const rec = decodeHomeBody(body);
  if (!rec.ok) return rec;
  if (!Buffer.from(rec.record.fingerprint).equals(Buffer.from(o.fingerprint))) return no('wrong_fingerprint', 'the record names another fingerprint');
  if (o.heldSeq !== undefined && !(rec.record.seq > o.heldSeq)) return no('stale_seq', `seq ${rec.record.seq} is not newer than the held ${o.heldSeq}`);
  return { ok: true, home: { record: rec.record, cert, publicKey, value } };
}

/** Decode a canonical body. Never throws. */
export function decodeHomeBody(body: Uint8Array): { ok: true; record: HomeRecord } | { ok: false; reason: HomeRecordReason; detail: string } {
  const d = cborDecodeChecked(body);
  if (!d.ok) return { ok: false, reason: 'bad_body', detail: d.reason };
  const b = d.value;
  if (!Array.isArray(b) || b.length !== 5) return { ok: false, reason: 'bad_body', detail: 'body must be an array of 5' };
  if (b[0] !== HOME_RECORD_VERSION) return { ok: false, reason: 'bad_version', detail: `version ${String(b[0])} is not ${HOME_RECORD_VERSION}` };
  const [, fingerprint, seq, timeMs, peersRaw] = b as [unknown, unknown, unknown, unknown, unknown];
  if (!(fingerprint instanceof Uint8Array) || fingerprint.length !== FP_BYTES) return { ok: false, reason: 'bad_body', detail: 'fingerprint must be 32 bytes' };
  if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(timeMs)) return { ok: false, reason: 'bad_body', detail: 'seq and time must be integers' };
  if (!Array.isArray(peersRaw)) return { ok: false, reason: 'bad_body', detail: 'peers must be an array' };
  if (peersRaw.length > HOME_PEERS_MAX) return { ok: false, reason: 'too_many_peers', detail: `${peersRaw.length} peers, more than ${HOME_PEERS_MAX}` };
  const peers: HomePeer[] = [];
  for (const p of peersRaw as unknown[]) {
    if (!Array.isArray(p) || p.length !== 3) return { ok: false, reason: 'bad_peer', detail: 'a peer must be [host, port, fingerprint]' };
    const peer = { host: p[0] as string, port: p[1] as number, fingerprint: p[2] as Uint8Array };
    const bad = peerProblem(peer);
    if (bad) return { ok: false, reason: 'bad_peer', detail: bad };
    peers.push(peer);
  }
  if (peers.length === 0) return { ok: false, reason: 'bad_peer', detail: 'a record lists at least one peer' };
  return { ok: true, record: { fingerprint, peers, seq: seq as number, timeMs: timeMs as number } };
}

function peerProblem(p: HomePeer): string | null {
  if (typeof p.host !== 'string' || p.host.length === 0 || p.host.length > HOME_HOST_CHARS_MAX) return 'peer host must be 1..64 characters';
  if (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535) return `peer port ${String(p.port)} is not 1..65535`;
  const a = parseAddr(p.host.includes(':') ? `[${p.host}]:${p.port}` : `${p.host}:${p.port}`);
  if (!a || a.host !== p.host) return `peer host "${p.host}" is not an address`;
  if (!(p.fingerprint instanceof Uint8Array) || p.fingerprint.length !== FP_BYTES) return 'peer fingerprint must be 32 bytes';
  return null;
}

function recordProblem(r: HomeRecord): string | null {
  if (!(r.fingerprint instanceof Uint8Array) || r.fingerprint.length !== FP_BYTES) return 'fingerprint must be 32 bytes';
  if (!Number.isSafeInteger(r.seq) || r.seq < 0) return 'seq must be a whole number';
  if (!Number.isSafeInteger(r.timeMs) || r.timeMs < 0) return 'time must be a whole number of ms';
  if (!Array.isArray(r.peers) || r.peers.length === 0) return 'a record lists at least one peer';
  if (r.peers.length > HOME_PEERS_MAX) return `${r.peers.length} peers, more than ${HOME_PEERS_MAX}`;
  for (const p of r.peers) {
    const bad = peerProblem(p);
    if (bad) return bad;
  }
  return null;
}
