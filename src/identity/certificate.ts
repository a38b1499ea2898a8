/**
 * Identities: an Ed25519 key pair (RFC 8032) with a self-signed X.509 v3 certificate (RFC 5280,
 * Ed25519 in certificates per RFC 8410). Certificates are made with @peculiar/x509 over Node's
 * WebCrypto. checkCertificate parses and checks them fully with node:crypto, several times faster
 * than @peculiar/x509. A peer registering a client needs less (readCertificateKey: a strict DER
 * walk, src/identity/cert-der.ts, and a JWK key import) and checks the self-signature only before
 * it serves the certificate (checkSelfSignature). The fingerprint is SHA-256 over the DER.
 */
import { X509Certificate, createPrivateKey, createPublicKey, hash, sign, verify, webcrypto, type KeyObject } from 'node:crypto';
import { readCertificateDer, type DerRejectReason } from './cert-der.js';

type X509Module = typeof import('@peculiar/x509');
let x509Module: Promise<X509Module> | undefined;

/** @peculiar/x509 (and reflect-metadata) take ~0.4 s to load; only generation needs them. */
function loadX509(): Promise<X509Module> {
  x509Module ??= (async () => {
    await import('reflect-metadata');
    const x509 = await import('@peculiar/x509');
    x509.cryptoProvider.set(webcrypto as unknown as Parameters<X509Module['cryptoProvider']['set']>[0]);
    return x509;
  })();
  return x509Module;
}

export const FINGERPRINT_HEX_LENGTH = 64;
const ED25519 = { name: 'Ed25519' } as const;

/** Why a certificate was refused. Stable strings. */
export type CertRejectReason =
  | 'bad_der' | 'not_ed25519' | 'expired' | 'not_yet_valid' | 'bad_self_signature' | 'not_v3';

export type CertCheck =
  | { ok: true; publicKey: KeyObject; fingerprint: Uint8Array; subject: string; notBeforeMs: number; notAfterMs: number }
  | { ok: false; reason: CertRejectReason; detail: string };

/** SHA-256 over DER bytes. */
export function fingerprintOf(der: Uint8Array): Uint8Array {
  return new Uint8Array(hash('sha256', der, 'buffer'));
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/** Parse a 64-character lowercase hex fingerprint, or return null. */
export function fingerprintFromHex(hex: string): Uint8Array | null {
  if (typeof hex !== 'string' || !/^[0-9a-f]{64}$/.test(hex)) return null;
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/**
 * Check a certificate: DER that parses, an Ed25519 public key, X.509 v3, inside its validity
 * period at `nowMs`, and a self-signature that verifies with its own key. Never throws.
 */
export function checkCertificate(der: Uint8Array, nowMs: number): CertCheck {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(der);
  } catch (e) {
    return { ok: false, reason: 'bad_der', detail: `certificate does not parse: ${(e as Error).message}` };
  }
  try {
    const publicKey = cert.publicKey;
    if (publicKey.asymmetricKeyType !== 'ed25519') {
      return { ok: false, reason: 'not_ed25519', detail: `certificate key is ${publicKey.asymmetricKeyType ?? 'unknown'}, not Ed25519` };
    }
    if (!isV3(der)) return { ok: false, reason: 'not_v3', detail: 'certificate is not X.509 version 3' };
    const notBefore = Date.parse(cert.validFrom);
    const notAfter = Date.parse(cert.validTo);
    if (!(nowMs >= notBefore)) return { ok: false, reason: 'not_yet_valid', detail: `certificate is valid only from ${cert.validFrom}` };
    if (!(nowMs <= notAfter)) return { ok: false, reason: 'expired', detail: `certificate expired on ${cert.validTo}` };
    if (!cert.verify(publicKey)) {
      return { ok: false, reason: 'bad_self_signature', detail: 'certificate self-signature does not verify' };
    }
    return { ok: true, publicKey, fingerprint: fingerprintOf(der), subject: cert.subject, notBeforeMs: notBefore, notAfterMs: notAfter };
  } catch (e) {
    return { ok: false, reason: 'bad_der', detail: `certificate is malformed: ${(e as Error).message}` };
  }
}

/** A certificate's Ed25519 key and validity period, read without checking its self-signature. */
export type CertKeyRead =
  | { ok: true; publicKey: KeyObject; notBeforeMs: number; notAfterMs: number }
  | { ok: false; reason: CertRejectReason; detail: string };

/**
 * The Ed25519 key and validity of a certificate that passes the strict DER walk (readCertificateDer:
 * well-formed DER, X.509 v3, Ed25519 key and signature algorithm, RFC 5280 times). The key is
 * imported as a JWK (RFC 8037), which skips OpenSSL's decoders (~15 us against ~170 us for SPKI).
 * Neither the validity period nor the self-signature is checked: see checkValidity and
 * checkSelfSignature. The detail of a bad_der refusal starts with the walk's own reason. Never throws.
 */
export function readCertificateKey(der: Uint8Array): CertKeyRead {
  const r = readCertificateDer(der);
  if (!r.ok) return { ok: false, reason: certReason(r.reason), detail: `${r.reason}: ${r.detail}` };
  const k = r.cert.publicKey;
  const x = Buffer.from(k.buffer, k.byteOffset, k.byteLength).toString('base64url');
  try {
    const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
    return { ok: true, publicKey, notBeforeMs: r.cert.notBeforeMs, notAfterMs: r.cert.notAfterMs };
  } catch (e) {
    return { ok: false, reason: 'not_ed25519', detail: `certificate key does not import: ${(e as Error).message}` };
  }
}

function certReason(walk: DerRejectReason): CertRejectReason {
  return walk === 'not_v3' ? 'not_v3' : walk === 'not_ed25519' ? 'not_ed25519' : 'bad_der';
}

/** Why `nowMs` is outside a validity period, or null when it is inside (both ends included). */
export function checkValidity(notBeforeMs: number, notAfterMs: number, nowMs: number): { reason: 'not_yet_valid' | 'expired'; detail: string } | null {
  if (!(nowMs >= notBeforeMs)) return { reason: 'not_yet_valid', detail: `certificate is valid only from ${new Date(notBeforeMs).toUTCString()}` };
  if (!(nowMs <= notAfterMs)) return { reason: 'expired', detail: `certificate expired on ${new Date(notAfterMs).toUTCString()}` };
  return null;
}

/**
 * Whether a certificate is one a client will accept as a contact's, apart from its dates: it
 * parses as X.509 with node:crypto, its key equals `publicKey` (the key readCertificateKey read),
 * and it verifies its own signature with that key. Never throws.
 */
export function checkSelfSignature(der: Uint8Array, publicKey: KeyObject): { ok: true } | { ok: false; reason: CertRejectReason; detail: string } {
  try {
    const cert = new X509Certificate(der);
    const own = cert.publicKey;
    if (own.asymmetricKeyType !== 'ed25519') {
      return { ok: false, reason: 'not_ed25519', detail: `certificate key is ${own.asymmetricKeyType ?? 'unknown'}, not Ed25519` };
    }
    if (!own.equals(publicKey)) return { ok: false, reason: 'bad_der', detail: 'certificate key read by X.509 parse differs from the DER walk' };
    if (!cert.verify(publicKey)) return { ok: false, reason: 'bad_self_signature', detail: 'certificate self-signature does not verify' };
    return { ok: true };
  } catch (e) {
    return { ok: false, reason: 'bad_der', detail: `certificate does not parse: ${(e as Error).message}` };
  }
}

/** TBSCertificate starts with an explicit [0] version field equal to 2 (v3). */
function isV3(der: Uint8Array): boolean {
  // Certificate SEQUENCE { tbsCertificate SEQUENCE { [0] { INTEGER 2 } ... } }
  let i = 0;
  const skipHeader = (): boolean => {
    i++; // tag
    const len = der[i++];
    if (len === undefined) return false;
    if (len & 0x80) i += len & 0x7f;
    return i < der.length;
  };
  if (der[0] !== 0x30 || !skipHeader()) return false;
  if (der[i] !== 0x30 || !skipHeader()) return false;
  return der[i] === 0xa0 && der[i + 1] === 0x03 && der[i + 2] === 0x02 && der[i + 3] === 0x01 && der[i + 4] === 0x02;
}

/** Ed25519 signature by a private key. */
export function signWith(privateKey: KeyObject, data: Uint8Array): Uint8Array {
  return new Uint8Array(sign(null, data, privateKey));
}

/** Ed25519 verification; false for any malformed input. */
export function verifyWith(publicKey: KeyObject, data: Uint8Array, sig: Uint8Array): boolean {
  try {
    return verify(null, data, publicKey, sig);
  } catch {
    return false;
  }
}

/** A usable identity: certificate, fingerprint and private key. */
export class Identity {
  readonly fingerprint: Uint8Array;
  readonly fingerprintHex: string;
  readonly publicKey: KeyObject;
  constructor(readonly cert: Uint8Array, readonly privateKey: KeyObject) {
    if (privateKey.asymmetricKeyType !== 'ed25519' || privateKey.type !== 'private') {
      throw new TypeError('identity key must be an Ed25519 private key');
    }
    this.fingerprint = fingerprintOf(cert);
    this.fingerprintHex = toHex(this.fingerprint);
    this.publicKey = createPublicKey(privateKey);
  }
  sign(data: Uint8Array): Uint8Array {
    return signWith(this.privateKey, data);
  }
  /** The private key as PKCS#8 PEM. */
  privateKeyPem(): string {
    return this.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  }
  certPem(): string {
    return derToPem(this.cert, 'CERTIFICATE');
  }
}

export function derToPem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

export interface GenerateOptions {
  /** Subject common name; default "peerpost". */
  commonName?: string;
  /** Validity start; default now minus one hour (clock skew). */
  notBefore?: Date;
  /** Validity length in days; default 3650. */
  validityDays?: number;
}

/** Make a fresh Ed25519 key pair and a self-signed X.509 v3 certificate. */
export async function generateIdentity(opts: GenerateOptions = {}): Promise<Identity> {
  const x509 = await loadX509();
  const keys = (await webcrypto.subtle.generateKey(ED25519, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const notBefore = opts.notBefore ?? new Date(Date.now() - 3600_000);
  const days = opts.validityDays ?? 3650;
  const cn = (opts.commonName ?? 'peerpost').replace(/[,=+<>#;\\"]/g, '_');
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(8))).toString('hex').replace(/^[89a-f]/, '1'),
    name: `CN=${cn}`,
    notBefore,
    notAfter: new Date(notBefore.getTime() + days * 86400_000),
    keys,
    signingAlgorithm: ED25519,
    extensions: [new x509.BasicConstraintsExtension(false, undefined, true)],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  const privateKey = createPrivateKey({ key: Buffer.from(pkcs8), format: 'der', type: 'pkcs8' });
  return new Identity(new Uint8Array(cert.rawData), privateKey);
}
