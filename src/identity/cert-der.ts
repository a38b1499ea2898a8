/**
 * A strict DER walk over an X.509 certificate (RFC 5280 section 4.1, DER per ITU-T X.690 section
 * 10) that reads only what a peer needs at registration, without a full X.509 parse:
 *
 *   Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }
 *   TBSCertificate ::= SEQUENCE {
 *     version [0] EXPLICIT INTEGER (must be 2: v3), serialNumber INTEGER,
 *     signature AlgorithmIdentifier, issuer Name, validity Validity, subject Name,
 *     subjectPublicKeyInfo, issuerUniqueID [1] OPTIONAL, subjectUniqueID [2] OPTIONAL,
 *     extensions [3] EXPLICIT SEQUENCE OPTIONAL }
 *
 * Checked: every element has a definite, minimally encoded length that ends exactly where its
 * parent's contents end (issuer, subject and extensions are walked down to their primitive
 * elements); the version is v3; the serial number is a minimal INTEGER; both times are UTCTime or
 * GeneralizedTime in the RFC 5280 section 4.1.2.5 form (seconds, "Z", no fractions) naming a real
 * date; the SubjectPublicKeyInfo is exactly the Ed25519 one (RFC 8410 section 4:
 * 302a300506032b6570032100 || 32 key bytes); both signature AlgorithmIdentifiers are Ed25519 with
 * absent parameters (RFC 8410 section 3) and the signature is a 64-byte BIT STRING.
 *
 * Not checked: the self-signature (see checkSelfSignature in certificate.ts), the contents of
 * names and extensions beyond their DER framing, and the validity period against a clock.
 * UTCTime and GeneralizedTime are both accepted for any year (RFC 5280 asks for UTCTime through
 * 2049; OpenSSL reads either too).
 *
 * readCertificateDer never throws: anything else is refused with a stable reason and a detail.
 */

/** Why a DER walk refused a certificate. Stable strings. */
export type DerRejectReason =
  | 'not_bytes'            // the input is not a Uint8Array
  | 'truncated'            // the input ends inside an element
  | 'length_overrun'       // an element's length runs past the end of the element holding it
  | 'bad_length'           // indefinite, non-minimal or over-long length encoding
  | 'bad_tag'              // an element is not the one RFC 5280 puts there
  | 'trailing_bytes'       // bytes left over after the last element of a SEQUENCE or the input
  | 'not_v3'               // the version field is absent (v1) or not 2
  | 'bad_integer'          // the serial number is empty or not minimally encoded
  | 'bad_time'             // a validity time is not in the RFC 5280 form or names no real date
  | 'not_ed25519'          // the SubjectPublicKeyInfo is not exactly an Ed25519 key
  | 'bad_signature_algorithm' // a signature algorithm is not Ed25519 with absent parameters
  | 'bad_signature'        // the signature is not a 64-byte BIT STRING with no unused bits
  | 'too_deep';            // names or extensions nest deeper than DER_DEPTH_MAX

/** What the walk reads from a certificate. Byte fields are views into the input. */
export interface CertificateDer {
  /** notBefore and notAfter in milliseconds on the Unix epoch clock. */
  notBeforeMs: number;
  notAfterMs: number;
  /** The 32-byte Ed25519 public key (RFC 8032 encoding). */
  publicKey: Uint8Array;
  /** The TBSCertificate DER: the bytes the self-signature covers. */
  tbs: Uint8Array;
  /** The 64-byte Ed25519 signature. */
  signature: Uint8Array;
}

export type CertificateDerRead =
  | { ok: true; cert: CertificateDer }
  | { ok: false; reason: DerRejectReason; detail: string };

/** Deepest nesting of constructed elements inside a Name or the extensions that the walk follows. */
export const DER_DEPTH_MAX = 16;
/** Longest certificate read; longer input is refused as bad_length. */
export const CERT_DER_BYTES_MAX = 65_535;

/** AlgorithmIdentifier { id-Ed25519 (1.3.101.112) } with absent parameters (RFC 8410 section 3). */
const ED25519_ALGORITHM = Uint8Array.from([0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70]);
/** SubjectPublicKeyInfo of an Ed25519 key up to the key bytes (RFC 8410 section 4). */
const ED25519_SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]);
const ED25519_KEY_BYTES = 32;
const ED25519_SIGNATURE_BYTES = 64;

const TAG_INTEGER = 0x02;
const TAG_BIT_STRING = 0x03;
const TAG_SEQUENCE = 0x30;
const TAG_UTC_TIME = 0x17;
const TAG_GENERALIZED_TIME = 0x18;
const TAG_VERSION = 0xa0;
const TAG_ISSUER_UID = 0x81;
const TAG_SUBJECT_UID = 0x82;
const TAG_EXTENSIONS = 0xa3;

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

type Refusal = { ok: false; reason: DerRejectReason; detail: string };

function refuse(reason: DerRejectReason, detail: string): Refusal {
  return { ok: false, reason, detail };
}

/**
 * A cursor over the input: header() reads one element's header and leaves its tag and the start
 * and end of its contents in `tag`, `start` and `end` (unchanged when it refuses).
 */
class Walk {
  tag = 0;
  start = 0;
  end = 0;
  constructor(readonly der: Uint8Array) {}

  /** Read the header at `pos` of an element that must end by `parentEnd`; null when it is sound. */
  header(pos: number, parentEnd: number, what: string): Refusal | null {
    const der = this.der;
    if (pos + 2 > der.length) return refuse('truncated', `input ends inside the header of ${what}`);
    if (pos + 2 > parentEnd) return refuse('length_overrun', `${what} does not fit in its parent`);
    const tag = der[pos]!;
    if ((tag & 0x1f) === 0x1f) return refuse('bad_tag', `${what} has a high tag number, which X.509 does not use`);
    let len = der[pos + 1]!;
    let start = pos + 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0) return refuse('bad_length', `${what} has an indefinite length (BER, not DER)`);
      if (n > 3) return refuse('bad_length', `${what} has a ${n}-byte length`);
      if (start + n > der.length) return refuse('truncated', `input ends inside the length of ${what}`);
      if (start + n > parentEnd) return refuse('length_overrun', `${what} does not fit in its parent`);
      if (der[start] === 0) return refuse('bad_length', `${what} has a length with a leading zero byte`);
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + der[start + i]!;
      if (len < 0x80) return refuse('bad_length', `${what} uses the long form for a length below 128`);
      start += n;
    }
    const end = start + len;
    if (end > der.length) return refuse('truncated', `${what} is ${len} bytes long but the input ends ${end - der.length} bytes early`);
    if (end > parentEnd) return refuse('length_overrun', `${what} is ${len} bytes long, ${end - parentEnd} more than its parent holds`);
    this.tag = tag;
    this.start = start;
    this.end = end;
    return null;
  }

  /** Header of an element that must carry `tag`. */
  expect(pos: number, parentEnd: number, tag: number, what: string): Refusal | null {
    const r = this.header(pos, parentEnd, what);
    if (r) return r;
    if (this.tag !== tag) return refuse('bad_tag', `${what}: expected tag 0x${hex2(tag)}, found 0x${hex2(this.tag)}`);
    return null;
  }

  /** DER framing of everything from `pos` to `end`, following constructed elements down. */
  framing(pos: number, end: number, depth: number, what: string): Refusal | null {
    if (depth > DER_DEPTH_MAX) return refuse('too_deep', `${what} nests deeper than ${DER_DEPTH_MAX} levels`);
    while (pos < end) {
      const r = this.header(pos, end, what);
      if (r) return r;
      const next = this.end;
      if (this.tag & 0x20) {
        const inner = this.framing(this.start, next, depth + 1, what);
        if (inner) return inner;
      }
      pos = next;
    }
    return null;
  }

  bytesAt(pos: number, expected: Uint8Array): boolean {
    const der = this.der;
    if (pos + expected.length > der.length) return false;
    for (let i = 0; i < expected.length; i++) if (der[pos + i] !== expected[i]) return false;
    return true;
  }
}

/** Walk a certificate's DER and read its validity, Ed25519 key, signed bytes and signature. */
export function readCertificateDer(der: Uint8Array): CertificateDerRead {
  if (!(der instanceof Uint8Array)) return refuse('not_bytes', 'certificate must be a Uint8Array');
  if (der.length > CERT_DER_BYTES_MAX) return refuse('bad_length', `certificate is ${der.length} bytes, more than ${CERT_DER_BYTES_MAX}`);
  const w = new Walk(der);
  let r = w.expect(0, der.length, TAG_SEQUENCE, 'Certificate');
  if (r) return r;
  if (w.end !== der.length) return refuse('trailing_bytes', `${der.length - w.end} bytes after the Certificate`);
  const certEnd = w.end;
  const tbsStart = w.start;
  r = w.expect(tbsStart, certEnd, TAG_SEQUENCE, 'TBSCertificate');
  if (r) return r;
  const tbsEnd = w.end;
  const tbs = readTbs(w, w.start, tbsEnd);
  if (!('keyAt' in tbs)) return tbs;

  // signatureAlgorithm: Ed25519, the same as the TBSCertificate's signature field (checked there).
  r = w.expect(tbsEnd, certEnd, TAG_SEQUENCE, 'signatureAlgorithm');
  if (r) return r;
  if (w.end - tbsEnd !== ED25519_ALGORITHM.length || !w.bytesAt(tbsEnd, ED25519_ALGORITHM)) {
    return refuse('bad_signature_algorithm', 'signatureAlgorithm is not Ed25519 with absent parameters');
  }
  r = w.expect(w.end, certEnd, TAG_BIT_STRING, 'signatureValue');
  if (r) return r;
  if (w.end - w.start !== 1 + ED25519_SIGNATURE_BYTES || der[w.start] !== 0) {
    return refuse('bad_signature', `signatureValue is not a ${ED25519_SIGNATURE_BYTES}-byte BIT STRING with no unused bits`);
  }
  if (w.end !== certEnd) return refuse('trailing_bytes', `${certEnd - w.end} bytes after signatureValue inside the Certificate`);
  return {
    ok: true,
    cert: {
      notBeforeMs: tbs.notBeforeMs,
      notAfterMs: tbs.notAfterMs,
      publicKey: der.subarray(tbs.keyAt, tbs.keyAt + ED25519_KEY_BYTES),
      tbs: der.subarray(tbsStart, tbsEnd),
      signature: der.subarray(w.start + 1, w.end),
    },
  };
}

interface TbsFields {
  notBeforeMs: number;
  notAfterMs: number;
  /** Offset of the 32 key bytes in the input. */
  keyAt: number;
}

/** The TBSCertificate's contents, from `pos` to `end`. */
function readTbs(w: Walk, pos: number, end: number): TbsFields | Refusal {
  const der = w.der;
  // version [0] EXPLICIT INTEGER 2 (absent means v1)
  let r = w.header(pos, end, 'version');
  if (r) return r;
  const versionTag = w.tag;
  if (versionTag === TAG_INTEGER) return refuse('not_v3', 'the version field is absent: an X.509 v1 certificate');
  if (versionTag !== TAG_VERSION) return refuse('bad_tag', `version: expected tag 0xa0, found 0x${hex2(versionTag)}`);
  if (w.end - w.start !== 3 || der[w.start] !== TAG_INTEGER || der[w.start + 1] !== 1) {
    return refuse('not_v3', 'the version field is not a one-byte INTEGER');
  }
  if (der[w.start + 2] !== 2) return refuse('not_v3', `certificate is X.509 version ${der[w.start + 2]! + 1}, not 3`);
  // serialNumber INTEGER, minimal two's complement
  r = w.expect(w.end, end, TAG_INTEGER, 'serialNumber');
  if (r) return r;
  const n = w.end - w.start;
  if (n === 0) return refuse('bad_integer', 'serialNumber is empty');
  if (n > 1 && ((der[w.start] === 0 && der[w.start + 1]! < 0x80) || (der[w.start] === 0xff && der[w.start + 1]! >= 0x80))) {
    return refuse('bad_integer', 'serialNumber is not minimally encoded');
  }
  // signature AlgorithmIdentifier: Ed25519 (refused after the key, so that a certificate of another
  // key type is refused as not_ed25519)
  const sigAt = w.end;
  r = w.expect(sigAt, end, TAG_SEQUENCE, 'signature');
  if (r) return r;
  const sigAlgOk = w.end - sigAt === ED25519_ALGORITHM.length && w.bytesAt(sigAt, ED25519_ALGORITHM);
  // issuer Name
  r = nameAt(w, w.end, end, 'issuer');
  if (r) return r;
  // validity SEQUENCE { notBefore Time, notAfter Time }
  r = w.expect(w.end, end, TAG_SEQUENCE, 'validity');
  if (r) return r;
  const validityEnd = w.end;
  r = w.header(w.start, validityEnd, 'notBefore');
  if (r) return r;
  const notBeforeMs = timeMs(der, w.tag, w.start, w.end);
  if (typeof notBeforeMs !== 'number') return refuse('bad_time', `notBefore ${notBeforeMs}`);
  r = w.header(w.end, validityEnd, 'notAfter');
  if (r) return r;
  const notAfterMs = timeMs(der, w.tag, w.start, w.end);
  if (typeof notAfterMs !== 'number') return refuse('bad_time', `notAfter ${notAfterMs}`);
  if (w.end !== validityEnd) return refuse('trailing_bytes', `${validityEnd - w.end} bytes after notAfter inside validity`);
  // subject Name
  r = nameAt(w, validityEnd, end, 'subject');
  if (r) return r;
  // subjectPublicKeyInfo: exactly the Ed25519 one
  const spkiAt = w.end;
  r = w.expect(spkiAt, end, TAG_SEQUENCE, 'subjectPublicKeyInfo');
  if (r) return r;
  if (!w.bytesAt(spkiAt, ED25519_SPKI_PREFIX) || w.end - spkiAt !== ED25519_SPKI_PREFIX.length + ED25519_KEY_BYTES) {
    const algorithm = w.expect(w.start, w.end, TAG_SEQUENCE, 'subjectPublicKeyInfo algorithm') ? 'malformed' : hexOf(der, w.start, w.end);
    return refuse('not_ed25519', `subjectPublicKeyInfo is not an Ed25519 key (algorithm ${algorithm})`);
  }
  const keyAt = spkiAt + ED25519_SPKI_PREFIX.length;
  if (!sigAlgOk) return refuse('bad_signature_algorithm', 'the TBSCertificate signature algorithm is not Ed25519 with absent parameters');
  // issuerUniqueID [1], subjectUniqueID [2], extensions [3], each optional, in this order
  pos = w.end;
  let last = 0;
  while (pos < end) {
    r = w.header(pos, end, 'TBSCertificate field after subjectPublicKeyInfo');
    if (r) return r;
    const order = w.tag === TAG_ISSUER_UID ? 1 : w.tag === TAG_SUBJECT_UID ? 2 : w.tag === TAG_EXTENSIONS ? 3 : 0;
    if (order === 0) return refuse('bad_tag', `unexpected tag 0x${hex2(w.tag)} after subjectPublicKeyInfo`);
    if (order <= last) return refuse('bad_tag', `tag 0x${hex2(w.tag)} repeated or out of order after subjectPublicKeyInfo`);
    last = order;
    const fieldEnd = w.end;
    if (order === 3) {
      r = w.expect(w.start, fieldEnd, TAG_SEQUENCE, 'extensions');
      if (r) return r;
      if (w.end !== fieldEnd) return refuse('trailing_bytes', `${fieldEnd - w.end} bytes after the extensions SEQUENCE`);
      if (w.start === w.end) return refuse('bad_tag', 'extensions is an empty SEQUENCE');
      r = w.framing(w.start, w.end, 1, 'extensions');
      if (r) return r;
    }
    pos = fieldEnd;
  }
  return { notBeforeMs, notAfterMs, keyAt };
}

/** A Name (a SEQUENCE of RDNs) at `pos`, framing checked; leaves w.end after it. */
function nameAt(w: Walk, pos: number, parentEnd: number, what: string): Refusal | null {
  const r = w.expect(pos, parentEnd, TAG_SEQUENCE, what);
  if (r) return r;
  const end = w.end;
  const inner = w.framing(w.start, end, 1, what);
  if (inner) return inner;
  w.end = end;
  return null;
}

/**
 * A validity time (RFC 5280 section 4.1.2.5): UTCTime YYMMDDHHMMSSZ (YY below 50 is 20YY, else
 * 19YY) or GeneralizedTime YYYYMMDDHHMMSSZ, in milliseconds; a string saying what is wrong otherwise.
 */
function timeMs(der: Uint8Array, tag: number, start: number, end: number): number | string {
  let year: number;
  let p = start;
  if (tag === TAG_UTC_TIME) {
    if (end - start !== 13) return `is a UTCTime of ${end - start} bytes, not YYMMDDHHMMSSZ`;
    const yy = digits(der, p, 2);
    if (yy < 0) return 'has a non-digit in its year';
    year = yy < 50 ? 2000 + yy : 1900 + yy;
    p += 2;
  } else if (tag === TAG_GENERALIZED_TIME) {
    if (end - start !== 15) return `is a GeneralizedTime of ${end - start} bytes, not YYYYMMDDHHMMSSZ`;
    year = digits(der, p, 4);
    if (year < 0) return 'has a non-digit in its year';
    p += 4;
  } else {
    return `has tag 0x${hex2(tag)}, neither UTCTime nor GeneralizedTime`;
  }
  const month = digits(der, p, 2);
  const day = digits(der, p + 2, 2);
  const hour = digits(der, p + 4, 2);
  const minute = digits(der, p + 6, 2);
  const second = digits(der, p + 8, 2);
  if (der[p + 10] !== 0x5a /* Z */) return 'does not end in Z';
  if (month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0) return 'has a non-digit';
  if (month < 1 || month > 12) return `has month ${month}`;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const monthDays = month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1]!;
  if (day < 1 || day > monthDays) return `has day ${day} in month ${month} of ${year}`;
  if (hour > 23 || minute > 59 || second > 59) return `has time ${hour}:${minute}:${second}`;
  return (daysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second) * 1000;
}

/** Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** `n` ASCII digits at `p` as a number, or -1. */
function digits(der: Uint8Array, p: number, n: number): number {
  let v = 0;
  for (let i = 0; i < n; i++) {
    const c = der[p + i]! - 0x30;
    if (!(c >= 0 && c <= 9)) return -1;
    v = v * 10 + c;
  }
  return v;
}

function hex2(b: number): string {
  return b.toString(16).padStart(2, '0');
}

function hexOf(der: Uint8Array, start: number, end: number): string {
  return Buffer.from(der.buffer, der.byteOffset + start, Math.min(end - start, 16)).toString('hex');
}
