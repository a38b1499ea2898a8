/**
 * Cross-checks against the openssl command line: fingerprints agree with
 * `openssl x509 -fingerprint -sha256`, certificates made by `openssl req` import and work, and
 * RSA / P-256 certificates are refused.
 */
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PeerpostError } from '../src/core/errors.js';
import { checkCertificate, generateIdentity, verifyWith } from '../src/identity/certificate.js';
import { CertificateRefusedError, importIdentity, loadIdentity, saveIdentity } from '../src/identity/store.js';
import { tempDir } from './helpers/cli.js';

function openssl(args: string[], cwd: string): string {
  return execFileSync('openssl', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
}

let haveOpenssl = true;
try {
  execFileSync('openssl', ['version'], { stdio: 'ignore' });
} catch {
  haveOpenssl = false;
}

/** `openssl x509 -noout -fingerprint -sha256` normalized to 64 lowercase hex digits. */
function opensslFingerprint(certFile: string, cwd: string, inform: 'PEM' | 'DER' = 'PEM'): string {
  const out = openssl(['x509', '-inform', inform, '-in', certFile, '-noout', '-fingerprint', '-sha256'], cwd);
  const m = /Fingerprint=([0-9A-Fa-f:]+)/.exec(out);
  if (!m) throw new Error(`unexpected openssl output: ${out}`);
  return m[1]!.replace(/:/g, '').toLowerCase();
}

/** `openssl req -x509` with the given key options, into c.pem / k.pem under `dir`. */
function opensslCert(dir: string, newkey: string[], prefix = ''): { cert: string; key: string } {
  const cert = join(dir, `${prefix}c.pem`);
  const key = join(dir, `${prefix}k.pem`);
  openssl(['req', '-x509', ...newkey, '-keyout', key, '-out', cert, '-days', '30', '-nodes', '-subj', '/CN=test'], dir);
  return { cert, key };
}

function tmp(t: Test): string {
  const { dir, cleanup } = tempDir('peerpost-openssl-');
  t.teardown(cleanup);
  return dir;
}

async function refusedReason(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof CertificateRefusedError) return e.reason;
    if (e instanceof PeerpostError) return e.code;
    throw e;
  }
  return 'accepted';
}

t.test('openssl cross-checks', { skip: haveOpenssl ? false : 'openssl is not installed' }, async (t) => {
  t.test('our fingerprint equals openssl x509 -fingerprint -sha256 for our certificate', async (t) => {
    const dir = tmp(t);
    const id = await generateIdentity({ commonName: 'fingerprint check' });
    await saveIdentity(dir, id);
    t.equal(opensslFingerprint(join(dir, 'cert.pem'), dir), id.fingerprintHex);
  });

  t.test('an openssl req -x509 -newkey ed25519 certificate and key import and work', async (t) => {
    const dir = tmp(t);
    const src = opensslCert(dir, ['-newkey', 'ed25519']);
    const home = join(dir, 'home');
    const id = await importIdentity(home, src.cert, src.key);
    t.equal(id.fingerprintHex, opensslFingerprint(src.cert, dir), 'fingerprint agrees with openssl');
    const check = checkCertificate(id.cert, Date.now());
    t.ok(check.ok, 'checkCertificate accepts it');
    if (check.ok) {
      t.equal(check.subject, 'CN=test');
      const msg = new TextEncoder().encode('signed by an imported key');
      t.ok(verifyWith(check.publicKey, msg, id.sign(msg)), 'signature verifies with the certificate key');
      t.notOk(verifyWith(check.publicKey, new TextEncoder().encode('other'), id.sign(msg)));
    }
    const loaded = await loadIdentity(home);
    t.equal(loaded.fingerprintHex, id.fingerprintHex, 'loads back from the home folder');
    t.equal(opensslFingerprint(join(home, 'cert.pem'), dir), id.fingerprintHex, 'saved cert.pem has the same fingerprint');
    // The saved key is a PKCS#8 key openssl reads and that matches the certificate.
    const pub1 = openssl(['pkey', '-in', join(home, 'key.pem'), '-pubout'], dir);
    const pub2 = openssl(['x509', '-in', src.cert, '-noout', '-pubkey'], dir);
    t.equal(pub1, pub2);
  });

  t.test('a DER certificate from openssl imports with the same fingerprint', async (t) => {
    const dir = tmp(t);
    const src = opensslCert(dir, ['-newkey', 'ed25519']);
    const der = join(dir, 'c.der');
    openssl(['x509', '-in', src.cert, '-outform', 'DER', '-out', der], dir);
    const id = await importIdentity(join(dir, 'home'), der, src.key);
    t.equal(id.fingerprintHex, opensslFingerprint(der, dir, 'DER'));
    t.equal(id.fingerprintHex, opensslFingerprint(src.cert, dir));
  });

  t.test('RSA and P-256 certificates are refused as not_ed25519', async (t) => {
    const dir = tmp(t);
    const rsa = opensslCert(dir, ['-newkey', 'rsa:2048'], 'rsa-');
    const ec = opensslCert(dir, ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], 'ec-');
    t.equal(await refusedReason(importIdentity(join(dir, 'h1'), rsa.cert, rsa.key)), 'not_ed25519');
    t.equal(await refusedReason(importIdentity(join(dir, 'h2'), ec.cert, ec.key)), 'not_ed25519');
  });

  t.test('an openssl key that is not the certificate key is refused; so is an encrypted key', async (t) => {
    const dir = tmp(t);
    const a = opensslCert(dir, ['-newkey', 'ed25519'], 'a-');
    const b = opensslCert(dir, ['-newkey', 'ed25519'], 'b-');
    t.equal(await refusedReason(importIdentity(join(dir, 'h1'), a.cert, b.key)), 'PEERPOST_KEY_MISMATCH');
    const enc = join(dir, 'enc.pem');
    openssl(['pkcs8', '-topk8', '-in', a.key, '-out', enc, '-v2', 'aes256', '-passout', 'pass:secret'], dir);
    t.match(readFileSync(enc, 'utf8'), /ENCRYPTED PRIVATE KEY/);
    t.equal(await refusedReason(importIdentity(join(dir, 'h2'), a.cert, enc)), 'PEERPOST_BAD_KEY');
  });

  t.test('a v1 certificate from openssl is refused as not_v3', async (t) => {
    const dir = tmp(t);
    const key = join(dir, 'k.pem');
    const csr = join(dir, 'r.csr');
    const cert = join(dir, 'v1.pem');
    openssl(['genpkey', '-algorithm', 'ed25519', '-out', key], dir);
    openssl(['req', '-new', '-key', key, '-out', csr, '-subj', '/CN=v1'], dir);
    // `x509 -req` without extensions writes a version 1 certificate.
    openssl(['x509', '-req', '-in', csr, '-signkey', key, '-out', cert, '-days', '30'], dir);
    t.match(openssl(['x509', '-in', cert, '-noout', '-text'], dir), /Version: 1 /, 'openssl wrote a v1 certificate');
    t.equal(await refusedReason(importIdentity(join(dir, 'h'), cert, key)), 'not_v3');
  });
});
