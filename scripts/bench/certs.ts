/**
 * Distinct, real Ed25519 client certificates (RFC 8410 keys in RFC 5280 certificates) in bulk, for
 * the benchmarks. One certificate is made with the project's generator; every further one is that
 * DER with a fresh node:crypto Ed25519 public key spliced into its SubjectPublicKeyInfo and the
 * TBSCertificate signed again with the new private key (RFC 8032), so each one is self-signed,
 * parses and passes checkCertificate. Sets are cached on disk under os.tmpdir() between runs, as
 * fixed-size records: certificate DER, then the 32-byte private key seed.
 */
import { createPrivateKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { fork } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync, closeSync, writeSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateIdentity } from '../../src/identity/certificate.js';

/** PKCS#8 header of an Ed25519 private key (RFC 8410 section 7); the 32-byte seed follows. */
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SIGNATURE_BYTES = 64;
const SEED_BYTES = 32;
const CACHE_VERSION = 1;

export interface CertSet {
  /** DER length of every certificate in the set. */
  derBytes: number;
  count: number;
  /** Record i: DER at i * recordBytes, seed after it. */
  data: Buffer;
  recordBytes: number;
}

export function certAt(set: CertSet, i: number): Buffer {
  const at = i * set.recordBytes;
  return set.data.subarray(at, at + set.derBytes);
}

export function privateKeyAt(set: CertSet, i: number): KeyObject {
  const at = i * set.recordBytes + set.derBytes;
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, set.data.subarray(at, at + SEED_BYTES)]), format: 'der', type: 'pkcs8' });
}

interface Template {
  der: Buffer;
  tbsStart: number;
  tbsEnd: number;
  keyAt: number;
}

/** DER header length (tag + length octets) at `i`. */
function headerBytes(der: Buffer, i: number): { header: number; length: number } {
  const l = der[i + 1]!;
  if (!(l & 0x80)) return { header: 2, length: l };
  const n = l & 0x7f;
  let length = 0;
  for (let k = 0; k < n; k++) length = length * 256 + der[i + 2 + k]!;
  return { header: 2 + n, length };
}

async function makeTemplate(): Promise<Template> {
  const id = await generateIdentity({ commonName: 'bench' });
  const der = Buffer.from(id.cert);
  const raw = Buffer.from(id.publicKey.export({ format: 'jwk' }).x as string, 'base64url');
  const outer = headerBytes(der, 0);
  const tbsStart = outer.header;
  const tbs = headerBytes(der, tbsStart);
  const keyAt = der.indexOf(raw);
  if (keyAt < 0 || der.length - SIGNATURE_BYTES <= tbsStart) throw new Error('unexpected certificate layout');
  return { der, tbsStart, tbsEnd: tbsStart + tbs.header + tbs.length, keyAt };
}

function fill(t: Template, count: number): Buffer {
  const recordBytes = t.der.length + SEED_BYTES;
  const out = Buffer.alloc(count * recordBytes);
  const der = Buffer.from(t.der);
  for (let i = 0; i < count; i++) {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const pub = Buffer.from(publicKey.export({ format: 'jwk' }).x as string, 'base64url');
    pub.copy(der, t.keyAt);
    const sig = sign(null, der.subarray(t.tbsStart, t.tbsEnd), privateKey);
    sig.copy(der, der.length - SIGNATURE_BYTES);
    const pk = privateKey.export({ format: 'der', type: 'pkcs8' });
    der.copy(out, i * recordBytes);
    pk.copy(out, i * recordBytes + der.length, pk.length - SEED_BYTES);
  }
  return out;
}

function cachePath(count: number): string {
  const dir = join(tmpdir(), 'peerpost-bench');
  mkdirSync(dir, { recursive: true });
  return join(dir, `certs-v${CACHE_VERSION}-${count}.bin`);
}

/**
 * `count` distinct certificates with their keys, from the cache or made now in `workers` child
 * processes. `onProgress` hears about generation only.
 */
export async function loadCerts(count: number, workers: number, onProgress?: (msg: string) => void): Promise<CertSet> {
  const path = cachePath(count);
  const t = await makeTemplate();
  const recordBytes = t.der.length + SEED_BYTES;
  if (existsSync(path)) {
    const data = readFileSync(path);
    if (data.length === count * recordBytes) return { derBytes: t.der.length, count, data, recordBytes };
  }
  const started = performance.now();
  onProgress?.(`making ${count} certificates in ${workers} processes (cached in ${path})`);
  const per = Math.ceil(count / workers);
  const parts = await Promise.all(
    Array.from({ length: workers }, (_, w) => {
      const n = Math.max(0, Math.min(per, count - w * per));
      return runWorker(t, n);
    }),
  );
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w');
  for (const p of parts) writeSync(fd, p);
  closeSync(fd);
  renameSync(tmp, path);
  onProgress?.(`made ${count} certificates in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return { derBytes: t.der.length, count, data: Buffer.concat(parts), recordBytes };
}

function runWorker(t: Template, n: number): Promise<Buffer> {
  if (n === 0) return Promise.resolve(Buffer.alloc(0));
  const dir = join(tmpdir(), 'peerpost-bench');
  const out = join(dir, `part-${process.pid}-${Math.random().toString(36).slice(2)}.bin`);
  const tpl = `${out}.tpl`;
  writeFileSync(tpl, JSON.stringify({ der: t.der.toString('hex'), tbsStart: t.tbsStart, tbsEnd: t.tbsEnd, keyAt: t.keyAt }));
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), ['--make', tpl, String(n), out], { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`certificate worker exited with ${code}`));
      const data = readFileSync(out);
      rmSync(out, { force: true });
      rmSync(tpl, { force: true });
      resolve(data);
    });
  });
}

if (process.argv[2] === '--make') {
  const [tplPath, n, out] = process.argv.slice(3) as [string, string, string];
  const j = JSON.parse(readFileSync(tplPath, 'utf8')) as { der: string; tbsStart: number; tbsEnd: number; keyAt: number };
  writeFileSync(out, fill({ ...j, der: Buffer.from(j.der, 'hex') }, Number(n)));
}
