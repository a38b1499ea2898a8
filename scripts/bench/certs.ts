/**
 * Distinct, real Ed25519 client certificates (RFC 8410 keys in RFC 5280 certificates) in bulk, for
 * the benchmarks. One certificate is made with the project's generator and kept as the template;
 * every further one is that DER with a fresh node:crypto Ed25519 public key spliced into its
 * SubjectPublicKeyInfo and the TBSCertificate signed again with the new private key (RFC 8032), so
 * each one is self-signed, parses and passes checkCertificate.
 *
 * Cache: one growing file under os.tmpdir()/peerpost-bench/ of fixed-size records (certificate
 * DER, then the 32-byte private key seed) next to the template DER it was made from. A request
 * for n certificates reads the first n records and makes only the missing ones, so the sets of
 * every size share one file (1,000,000 records of 232 + 32 bytes: 264 MB). Records are made in
 * worker threads (plain JavaScript, no loader) in chunks and appended as each chunk arrives, so an
 * interrupted preparation keeps what it made.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, statSync, writeFileSync, writeSync, ftruncateSync, fstatSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateIdentity } from '../../src/identity/certificate.js';

/** PKCS#8 header of an Ed25519 private key (RFC 8410 section 7); the 32-byte seed follows. */
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SIGNATURE_BYTES = 64;
const SEED_BYTES = 32;
const CACHE_VERSION = 2;
/** Records one worker makes per message to the parent. */
const CHUNK_RECORDS = 2000;

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

/** SubjectPublicKeyInfo of an Ed25519 key: this prefix, then the 32 raw key bytes (RFC 8410). */
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

function layout(der: Buffer): Template {
  const outer = headerBytes(der, 0);
  const tbsStart = outer.header;
  const tbs = headerBytes(der, tbsStart);
  const spkiAt = der.indexOf(SPKI_ED25519_PREFIX);
  if (spkiAt < 0 || der.length - SIGNATURE_BYTES <= tbsStart) throw new Error('unexpected certificate layout');
  return { der, tbsStart, tbsEnd: tbsStart + tbs.header + tbs.length, keyAt: spkiAt + SPKI_ED25519_PREFIX.length };
}

/** The template of the cache in `dir`, made (valid for the generator's default period) on first use. */
async function template(dir: string): Promise<Template> {
  const path = join(dir, `template-v${CACHE_VERSION}.der`);
  if (existsSync(path)) return layout(readFileSync(path));
  const id = await generateIdentity({ commonName: 'bench' });
  const der = Buffer.from(id.cert);
  writeFileSync(path, der);
  return layout(der);
}

/** Worker body, plain JavaScript: make `count` records from the template, post them in chunks. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createPrivateKey, randomBytes, sign } = require('node:crypto');
const { der: tplDer, tbsStart, tbsEnd, keyAt, count, chunk } = workerData;
const der = Buffer.from(tplDer);
const recordBytes = der.length + ${SEED_BYTES};
let left = count;
while (left > 0) {
  const n = Math.min(chunk, left);
  const out = Buffer.alloc(n * recordBytes);
  for (let i = 0; i < n; i++) {
    // A random seed imported as a JWK (RFC 8037; the public key is derived from it) and the public
    // key read back as a JWK: both are plain copies, where DER import/export goes through OpenSSL's
    // slow decoders and generateKeyPairSync deadlocks in Node 20 when a GC finalizes its job object
    // during a later key export (seen as the process asleep on a futex after ~10,000 keys).
    const seed = randomBytes(${SEED_BYTES});
    const privateKey = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: seed.toString('base64url'), x: '' }, format: 'jwk' });
    Buffer.from(privateKey.export({ format: 'jwk' }).x, 'base64url').copy(der, keyAt);
    sign(null, der.subarray(tbsStart, tbsEnd), privateKey).copy(der, der.length - ${SIGNATURE_BYTES});
    der.copy(out, i * recordBytes);
    seed.copy(out, i * recordBytes + der.length);
  }
  left -= n;
  parentPort.postMessage(out, [out.buffer]);
}
`;

/** Make `count` records in `workers` threads, handing each chunk to `onChunk` as it arrives. */
function makeRecords(t: Template, count: number, workers: number, onChunk: (b: Buffer) => void): Promise<void> {
  const per = Math.ceil(count / workers);
  return Promise.all(
    Array.from({ length: workers }, (_, w) => {
      const n = Math.max(0, Math.min(per, count - w * per));
      if (n === 0) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const worker = new Worker(WORKER_SOURCE, {
          eval: true,
          workerData: { der: t.der, tbsStart: t.tbsStart, tbsEnd: t.tbsEnd, keyAt: t.keyAt, count: n, chunk: CHUNK_RECORDS },
        });
        worker.on('message', (b: Uint8Array) => onChunk(Buffer.from(b.buffer, b.byteOffset, b.byteLength)));
        worker.on('error', reject);
        worker.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`certificate worker exited with ${code}`))));
      });
    }),
  ).then(() => undefined);
}

/**
 * `count` distinct certificates with their keys: the first `count` records of the cache, made now
 * (in worker threads, one per core unless `workers` says otherwise) for those the cache lacks.
 * `onProgress` hears about generation only.
 */
export async function loadCerts(count: number, workers = availableParallelism(), onProgress?: (msg: string) => void): Promise<CertSet> {
  const dir = join(tmpdir(), 'peerpost-bench');
  mkdirSync(dir, { recursive: true });
  const t = await template(dir);
  const recordBytes = t.der.length + SEED_BYTES;
  const path = join(dir, `certs-v${CACHE_VERSION}.bin`);
  const fd = openSync(path, existsSync(path) ? 'r+' : 'w+');
  try {
    let have = Math.floor(fstatSync(fd).size / recordBytes);
    ftruncateSync(fd, have * recordBytes); // a record cut short by an interrupted run
    if (have < count) {
      const started = performance.now();
      const missing = count - have;
      onProgress?.(`making ${missing} certificates in ${workers} threads (cache ${path} has ${have})`);
      let lastReport = started;
      await makeRecords(t, missing, workers, (b) => {
        writeSync(fd, b, 0, b.length, have * recordBytes);
        have += b.length / recordBytes;
        if (performance.now() - lastReport > 10_000) {
          lastReport = performance.now();
          onProgress?.(`  ${have} certificates`);
        }
      });
      const s = (performance.now() - started) / 1000;
      onProgress?.(`made ${missing} certificates in ${s.toFixed(1)} s (${Math.round(missing / s)}/s)`);
    }
    const data = Buffer.allocUnsafe(count * recordBytes);
    let at = 0;
    while (at < data.length) {
      const n = readSync(fd, data, at, Math.min(data.length - at, 1 << 26), at);
      if (n <= 0) throw new Error(`certificate cache ${path} is shorter than expected`);
      at += n;
    }
    return { derBytes: t.der.length, count, data, recordBytes };
  } finally {
    closeSync(fd);
  }
}

/** Size of the cache file in records, for reports. */
export function cachedCount(): number {
  const dir = join(tmpdir(), 'peerpost-bench');
  const tpl = join(dir, `template-v${CACHE_VERSION}.der`);
  const path = join(dir, `certs-v${CACHE_VERSION}.bin`);
  if (!existsSync(tpl) || !existsSync(path)) return 0;
  return Math.floor(statSync(path).size / (readFileSync(tpl).length + SEED_BYTES));
}
