/**
 * Identity files in the home folder: `cert.pem` (the self-signed X.509 v3 certificate, RFC 5280,
 * Ed25519 per RFC 8410, PEM per RFC 7468) and `key.pem` (the Ed25519 private key, RFC 8032, as
 * PKCS#8 PEM, RFC 5958 / RFC 7468, mode 0600). Parsing and checks use node:crypto.
 *
 * Errors are PeerpostError with these codes:
 *   PEERPOST_NO_IDENTITY          neither file exists
 *   PEERPOST_IDENTITY_INCOMPLETE  one of the two files is missing
 *   PEERPOST_KEY_PERMISSIONS      key.pem is readable or writable by group or others
 *   PEERPOST_BAD_KEY              key.pem is not an unencrypted Ed25519 PKCS#8 key
 *   PEERPOST_BAD_CERT             the certificate is refused (CertificateRefusedError, with `reason`)
 *   PEERPOST_KEY_MISMATCH         the key is not the certificate's key
 *   PEERPOST_HOME_UNREADABLE      the home folder or a file in it cannot be read or written
 *   PEERPOST_IDENTITY_EXISTS      import without force over an existing identity
 *   PEERPOST_FILE_UNREADABLE      (UsageError) an import source file cannot be read
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PeerpostError, UsageError } from '../core/errors.js';
import { checkCertificate, generateIdentity, Identity, type CertRejectReason, type GenerateOptions } from './certificate.js';
import { ensureHome, homeError, writeFileAtomic } from './home.js';

export { resolveHome } from './home.js';

export const CERT_FILE_NAME = 'cert.pem';
export const KEY_FILE_NAME = 'key.pem';
export const KEY_FILE_MODE = 0o600;
export const CERT_FILE_MODE = 0o644;
/** Identity files are small; anything larger is refused rather than read. */
export const IDENTITY_FILE_BYTES_MAX = 64 * 1024;

/** A certificate refused by checkCertificate; `reason` is its stable reason string. */
export class CertificateRefusedError extends PeerpostError {
  constructor(
    readonly reason: CertRejectReason,
    message: string,
  ) {
    super('PEERPOST_BAD_CERT', message);
    this.name = 'CertificateRefusedError';
  }
}

export interface IdentityPaths {
  cert: string;
  key: string;
}

export function identityPaths(home: string): IdentityPaths {
  return { cert: join(home, CERT_FILE_NAME), key: join(home, KEY_FILE_NAME) };
}

export interface LoadOptions {
  /** Wall-clock time used to check the certificate's validity; default Date.now(). */
  nowMs?: number;
}

/** Load the identity kept in `home`. Throws PeerpostError (codes above). */
export async function loadIdentity(home: string, opts: LoadOptions = {}): Promise<Identity> {
  assertHome(home);
  const paths = identityPaths(home);
  await statHome(home);
  const [certSt, keySt] = await Promise.all([statOrNull(paths.cert), statOrNull(paths.key)]);
  if (!certSt && !keySt) throw new PeerpostError('PEERPOST_NO_IDENTITY', `no identity in ${home}`);
  if (!certSt || !keySt) {
    const missing = certSt ? paths.key : paths.cert;
    throw new PeerpostError(
      'PEERPOST_IDENTITY_INCOMPLETE',
      `identity in ${home} is incomplete: ${missing} is missing; restore it, or move the folder away to start anew`,
    );
  }
  checkKeyMode(paths.key, keySt.mode);
  const certBytes = await readSmallFile(paths.cert, homeError);
  const keyBytes = await readSmallFile(paths.key, homeError);
  return identityFrom(certBytes, keyBytes, paths.cert, paths.key, opts.nowMs ?? Date.now());
}

/** Load the identity in `home`, or make and save a new one if there is none. */
export async function loadOrCreateIdentity(
  home: string,
  opts: LoadOptions & { generate?: GenerateOptions } = {},
): Promise<{ identity: Identity; created: boolean }> {
  try {
    return { identity: await loadIdentity(home, opts), created: false };
  } catch (e) {
    if (!(e instanceof PeerpostError) || e.code !== 'PEERPOST_NO_IDENTITY') throw e;
  }
  // One creation per home folder at a time in this process; other processes are kept out by
  // creating key.pem exclusively.
  let pending = creating.get(home);
  if (!pending) {
    pending = createIdentity(home, opts.generate).finally(() => creating.delete(home));
    creating.set(home, pending);
    return { identity: await pending, created: true };
  }
  return { identity: await pending, created: false };
}

const creating = new Map<string, Promise<Identity>>();

async function createIdentity(home: string, generate?: GenerateOptions): Promise<Identity> {
  const identity = await generateIdentity(generate);
  const paths = identityPaths(home);
  await ensureHome(home);
  try {
    await writeFileAtomic(paths.key, identity.privateKeyPem(), { mode: KEY_FILE_MODE, exclusive: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new PeerpostError('PEERPOST_IDENTITY_EXISTS', `another process created an identity in ${home} at the same time; run again`);
    }
    throw homeError(home, e);
  }
  try {
    await writeFileAtomic(paths.cert, identity.certPem(), { mode: CERT_FILE_MODE });
  } catch (e) {
    throw homeError(home, e);
  }
  return identity;
}

export interface ImportOptions extends LoadOptions {
  /** Replace an identity already in `home`. */
  force?: boolean;
}

/**
 * Import a certificate (PEM or DER) and its PKCS#8 PEM private key into `home`, after the same
 * checks as loadIdentity. Refuses to replace an existing identity unless `force`.
 */
export async function importIdentity(home: string, certFile: string, keyFile: string, opts: ImportOptions = {}): Promise<Identity> {
  assertHome(home);
  if (typeof certFile !== 'string' || certFile === '') throw new UsageError('PEERPOST_USAGE', 'a certificate file is needed');
  if (typeof keyFile !== 'string' || keyFile === '') throw new UsageError('PEERPOST_USAGE', 'a key file is needed');
  const sourceError = (path: string, e: unknown): PeerpostError =>
    new UsageError('PEERPOST_FILE_UNREADABLE', `cannot read ${path}: ${fileErrorText(e)}`, { cause: e });
  const certBytes = await readSmallFile(certFile, sourceError);
  const keyBytes = await readSmallFile(keyFile, sourceError);
  const identity = identityFrom(certBytes, keyBytes, certFile, keyFile, opts.nowMs ?? Date.now());
  if (!opts.force) {
    const paths = identityPaths(home);
    const existing = (await statOrNull(paths.cert)) ?? (await statOrNull(paths.key));
    if (existing) {
      throw new PeerpostError('PEERPOST_IDENTITY_EXISTS', `${home} already holds an identity; use --force to replace it`);
    }
  }
  await saveIdentity(home, identity);
  return identity;
}

/** Write an identity to `home` (key first, each file atomically), creating the folder if needed. */
export async function saveIdentity(home: string, identity: Identity): Promise<void> {
  assertHome(home);
  if (!(identity instanceof Identity)) throw new TypeError('identity must be an Identity');
  const paths = identityPaths(home);
  await ensureHome(home);
  try {
    await writeFileAtomic(paths.key, identity.privateKeyPem(), { mode: KEY_FILE_MODE });
    await writeFileAtomic(paths.cert, identity.certPem(), { mode: CERT_FILE_MODE });
  } catch (e) {
    throw homeError(home, e);
  }
}

/** Build an Identity from file contents, with every check; names the files in errors. */
export function identityFrom(certBytes: Uint8Array, keyBytes: Uint8Array, certName: string, keyName: string, nowMs: number): Identity {
  const der = certificateDer(certBytes);
  if (!der) throw new CertificateRefusedError('bad_der', `${certName}: not a PEM or DER certificate (bad_der)`);
  const check = checkCertificate(der, nowMs);
  if (!check.ok) throw new CertificateRefusedError(check.reason, `${certName}: ${check.detail} (${check.reason})`);
  const key = privateKeyFrom(keyBytes, keyName);
  const certSpki = check.publicKey.export({ format: 'der', type: 'spki' });
  if (!certSpki.equals(publicSpki(key))) {
    throw new PeerpostError('PEERPOST_KEY_MISMATCH', `${keyName} is not the key of the certificate ${certName}`);
  }
  return new Identity(der, key);
}

function publicSpki(key: KeyObject): Buffer {
  return createPublicKey(key).export({ format: 'der', type: 'spki' });
}

const PEM_RE = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/;

/** The DER of a PEM CERTIFICATE block, or the bytes themselves if they look like DER; null otherwise. */
export function certificateDer(bytes: Uint8Array): Uint8Array | null {
  const text = Buffer.from(bytes).toString('latin1');
  if (text.includes('-----BEGIN')) {
    const m = PEM_RE.exec(text);
    if (!m || m[1] !== 'CERTIFICATE') return null;
    const b64 = m[2]!.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length === 0) return null;
    return new Uint8Array(Buffer.from(b64, 'base64'));
  }
  return bytes[0] === 0x30 ? new Uint8Array(bytes) : null;
}

/** An unencrypted Ed25519 private key from PKCS#8 PEM (or PKCS#8 DER). Throws PEERPOST_BAD_KEY. */
function privateKeyFrom(bytes: Uint8Array, name: string): KeyObject {
  const text = Buffer.from(bytes).toString('latin1');
  let key: KeyObject;
  if (text.includes('-----BEGIN')) {
    const m = PEM_RE.exec(text);
    if (m?.[1] === 'ENCRYPTED PRIVATE KEY') throw badKey(name, 'the key is encrypted; peerpost needs an unencrypted PKCS#8 key');
    if (m?.[1] !== 'PRIVATE KEY') throw badKey(name, `expected a PKCS#8 "PRIVATE KEY" PEM block, found ${m ? `"${m[1]}"` : 'none'}`);
    try {
      key = createPrivateKey({ key: m[0], format: 'pem' });
    } catch (e) {
      throw badKey(name, (e as Error).message);
    }
  } else {
    try {
      key = createPrivateKey({ key: Buffer.from(bytes), format: 'der', type: 'pkcs8' });
    } catch (e) {
      throw badKey(name, `not a PKCS#8 key: ${(e as Error).message}`);
    }
  }
  if (key.asymmetricKeyType !== 'ed25519') throw badKey(name, `the key is ${key.asymmetricKeyType ?? 'unknown'}, not Ed25519`);
  return key;
}

function badKey(name: string, why: string): PeerpostError {
  return new PeerpostError('PEERPOST_BAD_KEY', `${name}: ${why}`);
}

/** Refuse a key file that group or others may read or write. Not checked on Windows. */
function checkKeyMode(file: string, mode: number): void {
  if (process.platform === 'win32' || (mode & 0o077) === 0) return;
  const octal = (mode & 0o777).toString(8).padStart(4, '0');
  throw new PeerpostError(
    'PEERPOST_KEY_PERMISSIONS',
    `${file} has mode ${octal}: the private key must not be readable or writable by group or others; run: chmod 600 ${file}`,
  );
}

function assertHome(home: unknown): asserts home is string {
  if (typeof home !== 'string' || home === '') throw new TypeError('home must be a non-empty path');
}

async function statHome(home: string): Promise<void> {
  try {
    const st = await stat(home);
    if (!st.isDirectory()) throw Object.assign(new Error('not a folder'), { code: 'ENOTDIR' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new PeerpostError('PEERPOST_NO_IDENTITY', `no identity in ${home}`);
    throw homeError(home, e);
  }
}

async function statOrNull(file: string): Promise<{ mode: number } | null> {
  try {
    return await stat(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw homeError(file, e);
  }
}

async function readSmallFile(file: string, onError: (path: string, e: unknown) => PeerpostError): Promise<Uint8Array> {
  try {
    const st = await stat(file);
    if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'EISDIR' });
    if (st.size > IDENTITY_FILE_BYTES_MAX) throw Object.assign(new Error(`larger than ${IDENTITY_FILE_BYTES_MAX} bytes`), { code: 'EFBIG' });
    return new Uint8Array(await readFile(file));
  } catch (e) {
    throw onError(file, e);
  }
}

function fileErrorText(e: unknown): string {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'not a regular file';
  return (e as Error)?.message ?? String(e);
}
