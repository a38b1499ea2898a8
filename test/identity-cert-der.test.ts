/**
 * The strict DER walk of src/identity/cert-der.ts and the registration-time key read built on it:
 * certificates made by the project, by the openssl command line and by a small DER builder here
 * agree with node:crypto's X509Certificate; malformed, truncated, lying-length, wrong-key-type,
 * non-v3 and out-of-period inputs are each refused with their own reason; nothing throws.
 */
import t, { type Test } from 'tap';
import { X509Certificate, generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readCertificateDer, DER_DEPTH_MAX, type CertificateDerRead } from '../src/identity/cert-der.js';
import { checkSelfSignature, checkValidity, generateIdentity, readCertificateKey } from '../src/identity/certificate.js';
import { tempDir } from './helpers/cli.js';

// ---------------------------------------------------------------------------------------------
// A minimal DER builder for hand-made certificates.

function lengthBytes(n: number): number[] {
  if (n < 0x80) return [n];
  const b: number[] = [];
  for (; n > 0; n = Math.floor(n / 256)) b.unshift(n & 0xff);
  return [0x80 | b.length, ...b];
}

function tlv(tag: number, ...parts: Array<Uint8Array | number[]>): Buffer {
  const c = Buffer.concat(parts.map((p) => Buffer.from(p)));
  return Buffer.concat([Buffer.from([tag, ...lengthBytes(c.length)]), c]);
}

const ED25519_ALG = tlv(0x30, tlv(0x06, [0x2b, 0x65, 0x70]));
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

function name(cn: string): Buffer {
  return tlv(0x30, tlv(0x31, tlv(0x30, tlv(0x06, [0x55, 0x04, 0x03]), tlv(0x0c, Buffer.from(cn, 'utf8')))));
}
const utc = (s: string): Buffer => tlv(0x17, Buffer.from(s, 'ascii'));
const gen = (s: string): Buffer => tlv(0x18, Buffer.from(s, 'ascii'));
/** extensions [3] { basicConstraints critical, cA false } */
const EXTENSIONS = tlv(0xa3, tlv(0x30, tlv(0x30, tlv(0x06, [0x55, 0x1d, 0x13]), tlv(0x01, [0xff]), tlv(0x04, tlv(0x30)))));

interface Parts {
  version: Buffer | null;
  serial: Buffer;
  sigAlg: Buffer;
  issuer: Buffer;
  validity: Buffer;
  subject: Buffer;
  spki: Buffer;
  tail: Buffer[];
  outerAlg: Buffer;
  signature: Buffer | null;
}

function rawKey(k: KeyObject): Buffer {
  return Buffer.from(k.export({ format: 'jwk' }).x!, 'base64url');
}

const KEY = generateKeyPairSync('ed25519');

/** A self-signed certificate from parts (each part may be replaced); signed with KEY. */
function build(p: Partial<Parts> = {}): Buffer {
  const tbs = tlv(
    0x30,
    ...(p.version === null ? [] : [p.version ?? tlv(0xa0, tlv(0x02, [2]))]),
    p.serial ?? tlv(0x02, [0x01, 0x23]),
    p.sigAlg ?? ED25519_ALG,
    p.issuer ?? name('built'),
    p.validity ?? tlv(0x30, utc('250101000000Z'), gen('20991231235959Z')),
    p.subject ?? name('built'),
    p.spki ?? Buffer.concat([SPKI_PREFIX, rawKey(KEY.publicKey)]),
    ...(p.tail ?? [EXTENSIONS]),
  );
  const sig = p.signature ?? tlv(0x03, [0], sign(null, tbs, KEY.privateKey));
  return tlv(0x30, tbs, p.outerAlg ?? ED25519_ALG, sig);
}

function reasonOf(r: CertificateDerRead): string {
  return r.ok ? 'ok' : r.reason;
}

/** The walk agrees with node:crypto's full X.509 parse on dates and key, and the tbs/signature verify. */
function agreesWithX509(t: Test, der: Uint8Array, label: string): void {
  const r = readCertificateDer(der);
  t.ok(r.ok, `${label}: walk accepts it${r.ok ? '' : ` (${r.reason}: ${r.detail})`}`);
  if (!r.ok) return;
  const x = new X509Certificate(der);
  t.equal(r.cert.notBeforeMs, Date.parse(x.validFrom), `${label}: notBefore`);
  t.equal(r.cert.notAfterMs, Date.parse(x.validTo), `${label}: notAfter`);
  t.equal(Buffer.from(r.cert.publicKey).toString('hex'), rawKey(x.publicKey).toString('hex'), `${label}: key`);
  t.ok(verify(null, r.cert.tbs, x.publicKey, r.cert.signature), `${label}: the signature covers the walk's tbs`);
  const k = readCertificateKey(der);
  t.ok(k.ok && k.publicKey.equals(x.publicKey), `${label}: readCertificateKey imports the same key`);
  if (k.ok) t.same(checkSelfSignature(der, k.publicKey), { ok: true }, `${label}: self-signature`);
}

// ---------------------------------------------------------------------------------------------

t.test('certificates made by the project agree with X509Certificate', async (t) => {
  for (const cn of ['a', 'peerpost', 'x'.repeat(64)]) {
    const id = await generateIdentity({ commonName: cn });
    agreesWithX509(t, id.cert, `CN of ${cn.length}`);
  }
  const far = await generateIdentity({ notBefore: new Date(Date.UTC(2048, 0, 1)), validityDays: 3650 });
  agreesWithX509(t, far.cert, 'notAfter past 2050 (GeneralizedTime)');
});

t.test('hand-built certificates agree with X509Certificate', async (t) => {
  agreesWithX509(t, build(), 'UTCTime and GeneralizedTime');
  agreesWithX509(t, build({ tail: [] }), 'no extensions');
  agreesWithX509(t, build({ validity: tlv(0x30, utc('491231235959Z'), utc('500101000000Z')) }), 'UTCTime 49 and 50');
  agreesWithX509(t, build({ serial: tlv(0x02, [0x00, 0x80]) }), 'serial with a needed leading zero');
  agreesWithX509(t, build({ subject: name('y'.repeat(200)) }), 'long subject (two-byte lengths)');
  const r = readCertificateDer(build({ validity: tlv(0x30, utc('491231235959Z'), utc('500101000000Z')) }));
  t.ok(r.ok && r.cert.notBeforeMs === Date.UTC(2049, 11, 31, 23, 59, 59) && r.cert.notAfterMs === Date.UTC(1950, 0, 1));
  const leap = readCertificateDer(build({ validity: tlv(0x30, gen('20240229120000Z'), gen('24000229000000Z')) }));
  t.ok(leap.ok && leap.cert.notBeforeMs === Date.UTC(2024, 1, 29, 12) && leap.cert.notAfterMs === Date.UTC(2400, 1, 29));
});

let haveOpenssl = true;
try {
  execFileSync('openssl', ['version'], { stdio: 'ignore' });
} catch {
  haveOpenssl = false;
}

t.test('certificates made by openssl', { skip: haveOpenssl ? false : 'openssl is not installed' }, async (t) => {
  const { dir, cleanup } = tempDir('peerpost-der-');
  t.teardown(cleanup);
  const openssl = (args: string[]): string =>
    execFileSync('openssl', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
  const make = (newkey: string[], days: number, prefix: string): Buffer => {
    openssl(['req', '-x509', ...newkey, '-keyout', `${prefix}k.pem`, '-out', `${prefix}c.pem`, '-days', String(days), '-nodes', '-subj', '/CN=test/O=peerpost']);
    openssl(['x509', '-in', `${prefix}c.pem`, '-outform', 'DER', '-out', `${prefix}c.der`]);
    return readFileSync(join(dir, `${prefix}c.der`));
  };
  agreesWithX509(t, make(['-newkey', 'ed25519'], 30, 'a-'), 'openssl ed25519, 30 days');
  agreesWithX509(t, make(['-newkey', 'ed25519'], 20_000, 'b-'), 'openssl ed25519, notAfter after 2050');
  t.equal(reasonOf(readCertificateDer(make(['-newkey', 'rsa:2048'], 30, 'r-'))), 'not_ed25519', 'RSA');
  t.equal(reasonOf(readCertificateDer(make(['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], 30, 'e-'))), 'not_ed25519', 'P-256');
  t.equal(reasonOf(readCertificateDer(make(['-newkey', 'ed448'], 30, 'd-'))), 'not_ed25519', 'Ed448');
  // `x509 -req` without extensions writes a version 1 certificate.
  openssl(['genpkey', '-algorithm', 'ed25519', '-out', 'v1k.pem']);
  openssl(['req', '-new', '-key', 'v1k.pem', '-out', 'v1.csr', '-subj', '/CN=v1']);
  openssl(['x509', '-req', '-in', 'v1.csr', '-signkey', 'v1k.pem', '-out', 'v1.der', '-outform', 'DER', '-days', '30']);
  const v1 = readCertificateDer(readFileSync(join(dir, 'v1.der')));
  t.equal(reasonOf(v1), 'not_v3', 'openssl v1 certificate');
});

t.test('each kind of malformed certificate is refused with its own reason', async (t) => {
  const good = build();
  const cases: Array<[string, unknown, string]> = [
    ['not a Uint8Array', 'a string', 'not_bytes'],
    ['empty', new Uint8Array(0), 'truncated'],
    ['cut short by one byte', good.subarray(0, good.length - 1), 'truncated'],
    ['a trailing byte', Buffer.concat([good, Buffer.from([0])]), 'trailing_bytes'],
    ['a byte after signatureValue inside the Certificate', (() => {
      const tbs = readCertificateDer(good);
      if (!tbs.ok) throw new Error('good certificate refused');
      return tlv(0x30, tbs.cert.tbs, ED25519_ALG, tlv(0x03, [0], tbs.cert.signature), [0x05, 0x00]);
    })(), 'trailing_bytes'],
    ['extensions claim one byte more than the TBSCertificate holds', build({ tail: [(() => {
      const e = Buffer.from(EXTENSIONS);
      e[1]!++;
      return e;
    })()] }), 'length_overrun'],
    ['an issuer RDN claims more than the issuer holds', build({ issuer: (() => {
      const n = name('lying');
      n[3]!++;
      return n;
    })() }), 'length_overrun'],
    ['indefinite length', Buffer.concat([Buffer.from([0x30, 0x80]), good.subarray(good[1]! & 0x80 ? 2 + (good[1]! & 0x7f) : 2), Buffer.from([0, 0])]), 'bad_length'],
    ['long-form length below 128', build({ serial: Buffer.from([0x02, 0x81, 0x01, 0x05]) }), 'bad_length'],
    ['length with a leading zero byte', build({ subject: Buffer.concat([Buffer.from([0x30, 0x82, 0x00]), name('z').subarray(1)]) }), 'bad_length'],
    ['five-byte length', Buffer.from([0x30, 0x85, 0, 0, 0, 0, 1, 0]), 'bad_length'],
    ['issuer is a SET', build({ issuer: tlv(0x31, name('x').subarray(2)) }), 'bad_tag'],
    ['high tag number', build({ tail: [Buffer.from([0xbf, 0x1f, 0x00])] }), 'bad_tag'],
    ['unknown field after the key', build({ tail: [tlv(0xa4, tlv(0x05))] }), 'bad_tag'],
    ['extensions twice', build({ tail: [EXTENSIONS, EXTENSIONS] }), 'bad_tag'],
    ['version is a SEQUENCE', build({ version: tlv(0x30, tlv(0x02, [2])) }), 'bad_tag'],
    ['v1: no version field', build({ version: null, tail: [] }), 'not_v3'],
    ['v2', build({ version: tlv(0xa0, tlv(0x02, [1])) }), 'not_v3'],
    ['version 4', build({ version: tlv(0xa0, tlv(0x02, [3])) }), 'not_v3'],
    ['serial number not minimal', build({ serial: tlv(0x02, [0x00, 0x01]) }), 'bad_integer'],
    ['serial number empty', build({ serial: tlv(0x02, []) }), 'bad_integer'],
    ['30 February', build({ validity: tlv(0x30, utc('250230000000Z'), gen('20991231235959Z')) }), 'bad_time'],
    ['29 February in 2100', build({ validity: tlv(0x30, utc('250101000000Z'), gen('21000229000000Z')) }), 'bad_time'],
    ['month 13', build({ validity: tlv(0x30, utc('251301000000Z'), gen('20991231235959Z')) }), 'bad_time'],
    ['hour 24', build({ validity: tlv(0x30, utc('250101240000Z'), gen('20991231235959Z')) }), 'bad_time'],
    ['second 60', build({ validity: tlv(0x30, utc('250101000060Z'), gen('20991231235959Z')) }), 'bad_time'],
    ['UTCTime without seconds', build({ validity: tlv(0x30, utc('2501010000Z'), gen('20991231235959Z')) }), 'bad_time'],
    ['UTCTime with an offset', build({ validity: tlv(0x30, utc('250101000000+0100').subarray(0, 15), gen('20991231235959Z')) }), 'bad_time'],
    ['GeneralizedTime with fractional seconds', build({ validity: tlv(0x30, utc('250101000000Z'), gen('20991231235959.5Z')) }), 'bad_time'],
    ['GeneralizedTime without Z', build({ validity: tlv(0x30, utc('250101000000Z'), gen('20991231235959+')) }), 'bad_time'],
    ['a letter in the date', build({ validity: tlv(0x30, utc('25O101000000Z'), gen('20991231235959Z')) }), 'bad_time'],
    ['a time as PrintableString', build({ validity: tlv(0x30, tlv(0x13, Buffer.from('250101000000Z')), gen('20991231235959Z')) }), 'bad_time'],
    ['validity with a third time', build({ validity: tlv(0x30, utc('250101000000Z'), gen('20991231235959Z'), gen('20991231235959Z')) }), 'trailing_bytes'],
    ['Ed25519 key of 31 bytes', build({ spki: tlv(0x30, ED25519_ALG, tlv(0x03, [0], randomBytes(31))) }), 'not_ed25519'],
    ['Ed25519 key with unused bits', build({ spki: tlv(0x30, ED25519_ALG, tlv(0x03, [1], randomBytes(32))) }), 'not_ed25519'],
    ['X25519 key', build({ spki: tlv(0x30, tlv(0x30, tlv(0x06, [0x2b, 0x65, 0x6e])), tlv(0x03, [0], randomBytes(32))) }), 'not_ed25519'],
    ['Ed25519 key with NULL parameters', build({ spki: tlv(0x30, tlv(0x30, tlv(0x06, [0x2b, 0x65, 0x70]), tlv(0x05)), tlv(0x03, [0], randomBytes(32))) }), 'not_ed25519'],
    ['TBS signature algorithm Ed448', build({ sigAlg: tlv(0x30, tlv(0x06, [0x2b, 0x65, 0x71])) }), 'bad_signature_algorithm'],
    ['TBS signature algorithm with NULL parameters', build({ sigAlg: tlv(0x30, tlv(0x06, [0x2b, 0x65, 0x70]), tlv(0x05)) }), 'bad_signature_algorithm'],
    ['outer signature algorithm Ed448', build({ outerAlg: tlv(0x30, tlv(0x06, [0x2b, 0x65, 0x71])) }), 'bad_signature_algorithm'],
    ['signature of 63 bytes', build({ signature: tlv(0x03, [0], randomBytes(63)) }), 'bad_signature'],
    ['signature with unused bits', build({ signature: tlv(0x03, [1], randomBytes(64)) }), 'bad_signature'],
    ['signature as OCTET STRING', build({ signature: tlv(0x04, [0], randomBytes(64)) }), 'bad_tag'],
    ['subject nested too deep', build({ subject: Array.from({ length: DER_DEPTH_MAX + 1 }).reduce<Buffer>((acc) => tlv(0x30, acc), tlv(0x05)) }), 'too_deep'],
  ];
  const seen = new Map<string, string>();
  for (const [label, der, reason] of cases) {
    const r = readCertificateDer(der as Uint8Array);
    t.equal(reasonOf(r), reason, label);
    if (!r.ok) {
      t.ok(r.detail.length > 0 && r.detail.length < 200, `${label}: detail "${r.detail}"`);
      seen.set(r.reason, label);
    }
  }
  t.equal(seen.size, 13, 'every reason is reached');
});

t.test('every truncation, and random corruption, is refused or read without throwing', async (t) => {
  const id = await generateIdentity();
  const sources = [id.cert, build(), build({ subject: name('w'.repeat(150)) })];
  let refused = 0;
  let runs = 0;
  for (const der of sources) {
    for (let n = 0; n < der.length; n++) {
      t.equal(reasonOf(readCertificateDer(der.subarray(0, n))), 'truncated', `prefix of ${n} of ${der.length} bytes`);
    }
  }
  // Flip bits, overwrite bytes, insert and delete bytes: the walk must return, never throw, and
  // anything it accepts must have the shapes it promises.
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % n;
  };
  for (let i = 0; i < 20_000; i++) {
    const src = Buffer.from(sources[i % sources.length]!);
    let der: Buffer = src;
    const at = rand(src.length);
    switch (i % 4) {
      case 0: der[at]! ^= 1 << rand(8); break;
      case 1: der[at] = rand(256); break;
      case 2: der = Buffer.concat([src.subarray(0, at), Buffer.from([rand(256)]), src.subarray(at)]); break;
      default: der = Buffer.concat([src.subarray(0, at), src.subarray(at + 1 + rand(4))]);
    }
    runs++;
    let r: CertificateDerRead;
    try {
      r = readCertificateDer(der);
    } catch (e) {
      t.fail(`threw on input ${der.toString('hex')}: ${(e as Error).message}`);
      continue;
    }
    if (!r.ok) {
      refused++;
      continue;
    }
    if (r.cert.publicKey.length !== 32 || r.cert.signature.length !== 64 || !Number.isFinite(r.cert.notBeforeMs) || !Number.isFinite(r.cert.notAfterMs)) {
      t.fail(`accepted with bad shapes: ${der.toString('hex')}`);
    }
    const k = readCertificateKey(der); // never throws either
    t.ok(typeof k.ok === 'boolean');
  }
  t.ok(refused > runs / 2, `most corruptions refused (${refused} of ${runs})`);
});

t.test('readCertificateKey, checkValidity and checkSelfSignature', async (t) => {
  const id = await generateIdentity();
  const k = readCertificateKey(id.cert);
  t.ok(k.ok);
  if (!k.ok) return;
  t.ok(k.publicKey.equals(id.publicKey), 'the identity key');
  const msg = Buffer.from('proof');
  t.ok(verify(null, msg, k.publicKey, id.sign(msg)), 'verifies what the identity signs');
  t.equal(checkValidity(k.notBeforeMs, k.notAfterMs, k.notBeforeMs), null, 'valid from notBefore');
  t.equal(checkValidity(k.notBeforeMs, k.notAfterMs, k.notAfterMs), null, 'valid until notAfter');
  t.equal(checkValidity(k.notBeforeMs, k.notAfterMs, k.notBeforeMs - 1)?.reason, 'not_yet_valid');
  t.equal(checkValidity(k.notBeforeMs, k.notAfterMs, k.notAfterMs + 1)?.reason, 'expired');
  t.equal(checkValidity(k.notBeforeMs, k.notAfterMs, Number.NaN)?.reason, 'not_yet_valid', 'NaN is never inside');

  const badSig = Buffer.from(id.cert);
  badSig[badSig.length - 1]! ^= 1;
  const kb = readCertificateKey(badSig);
  t.ok(kb.ok, 'a bad self-signature still reads: it is checked separately');
  if (kb.ok) t.equal((checkSelfSignature(badSig, kb.publicKey) as { reason: string }).reason, 'bad_self_signature');
  const other = generateKeyPairSync('ed25519').publicKey;
  t.equal((checkSelfSignature(id.cert, other) as { reason: string }).reason, 'bad_der', 'a key other than the walked one');
  t.equal((checkSelfSignature(new Uint8Array(10), other) as { reason: string }).reason, 'bad_der', 'not X.509');

  const reasons = (der: Uint8Array): string => {
    const r = readCertificateKey(der);
    return r.ok ? 'ok' : `${r.reason} ${r.detail}`;
  };
  t.match(reasons(build({ version: null, tail: [] })), /^not_v3 not_v3: /);
  t.match(reasons(build({ spki: tlv(0x30, tlv(0x30, tlv(0x06, [0x2b, 0x65, 0x6e])), tlv(0x03, [0], randomBytes(32))) })), /^not_ed25519 not_ed25519: /);
  t.match(reasons(id.cert.subarray(0, 100)), /^bad_der truncated: /);
  t.match(reasons(build({ serial: tlv(0x02, [0x00, 0x01]) })), /^bad_der bad_integer: /);
});
