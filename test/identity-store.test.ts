import t, { type Test } from 'tap';
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PeerpostError, UsageError } from '../src/core/errors.js';
import { checkCertificate, derToPem, generateIdentity, verifyWith, type Identity } from '../src/identity/certificate.js';
import { readConfig, resolveHome, updateConfig, writeConfig } from '../src/identity/home.js';
import {
  CertificateRefusedError,
  importIdentity,
  loadIdentity,
  loadOrCreateIdentity,
  saveIdentity,
} from '../src/identity/store.js';
import { tempDir } from './helpers/cli.js';

const DAY_MS = 86_400_000;

function tmp(t: Test): string {
  const { dir, cleanup } = tempDir('peerpost-identity-');
  t.teardown(cleanup);
  return dir;
}


/** Assert that `p` rejects with a PeerpostError of `code`; returns it. */
async function rejectsCode(t: Test, p: Promise<unknown>, code: string): Promise<PeerpostError> {
  try {
    await p;
  } catch (e) {
    t.type(e, PeerpostError);
    t.equal((e as PeerpostError).code, code, (e as Error).message);
    return e as PeerpostError;
  }
  t.fail(`expected ${code}, but it resolved`);
  return new PeerpostError('none', 'none');
}

/** Write an identity's files to `dir` under the given names, as import sources. */
function writeSources(dir: string, id: Identity, certBytes: Uint8Array | string = id.certPem()): { cert: string; key: string } {
  const cert = join(dir, `${id.fingerprintHex.slice(0, 8)}-cert.pem`);
  const key = join(dir, `${id.fingerprintHex.slice(0, 8)}-key.pem`);
  writeFileSync(cert, certBytes);
  writeFileSync(key, id.privateKeyPem(), { mode: 0o600 });
  return { cert, key };
}

t.test('resolveHome: option, then PEERPOST_HOME, then XDG_CONFIG_HOME, then ~/.config', async (t) => {
  t.equal(resolveHome('/a/b', { PEERPOST_HOME: '/env' }), '/a/b');
  t.equal(resolveHome('rel', {}), join(process.cwd(), 'rel'));
  t.equal(resolveHome(undefined, { PEERPOST_HOME: '/env', XDG_CONFIG_HOME: '/xdg' }), '/env');
  t.equal(resolveHome(undefined, { XDG_CONFIG_HOME: '/xdg' }), '/xdg/peerpost');
  t.match(resolveHome(undefined, { XDG_CONFIG_HOME: 'relative' }), /\/\.config\/peerpost$/);
  t.match(resolveHome(undefined, {}), /\/\.config\/peerpost$/);
  t.throws(() => resolveHome('  ', {}), UsageError);
});

t.test('loadOrCreateIdentity creates once (home 0700, key 0600, no temp files), then loads the same', async (t) => {
  const home = join(tmp(t), 'nested', 'home');
  const first = await loadOrCreateIdentity(home);
  t.equal(first.created, true);
  t.match(first.identity.fingerprintHex, /^[0-9a-f]{64}$/);
  t.equal(statSync(home).mode & 0o777, 0o700);
  t.equal(statSync(join(home, 'key.pem')).mode & 0o777, 0o600);
  t.same(readdirSync(home).sort(), ['cert.pem', 'key.pem']);
  t.match(readFileSync(join(home, 'cert.pem'), 'utf8'), /^-----BEGIN CERTIFICATE-----\n/);
  t.match(readFileSync(join(home, 'key.pem'), 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/);

  const second = await loadOrCreateIdentity(home);
  t.equal(second.created, false);
  t.equal(second.identity.fingerprintHex, first.identity.fingerprintHex);
  const msg = new TextEncoder().encode('hello');
  const check = checkCertificate(second.identity.cert, Date.now());
  t.ok(check.ok);
  if (check.ok) t.ok(verifyWith(check.publicKey, msg, second.identity.sign(msg)));
});

t.test('concurrent loadOrCreateIdentity calls agree on one identity; an existing key.pem is never replaced', async (t) => {
  const home = join(tmp(t), 'h');
  const all = await Promise.all([loadOrCreateIdentity(home), loadOrCreateIdentity(home), loadOrCreateIdentity(home)]);
  t.same(all.map((r) => r.created).sort(), [false, false, true], 'exactly one of them created it (which one depends on scheduling)');
  t.same(new Set(all.map((r) => r.identity.fingerprintHex)).size, 1);
  t.equal((await loadIdentity(home)).fingerprintHex, all[0]!.identity.fingerprintHex);
  t.same(readdirSync(home).sort(), ['cert.pem', 'key.pem']);

  // Another process that wrote key.pem between our check and our write wins; we do not overwrite it.
  const other = join(tmp(t), 'o');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(other);
  const theirs = await generateIdentity();
  const { writeFileAtomic } = await import('../src/identity/home.js');
  await writeFileAtomic(join(other, 'key.pem'), theirs.privateKeyPem(), { exclusive: true });
  await rejects(t, writeFileAtomic(join(other, 'key.pem'), 'x', { exclusive: true }), 'EEXIST');
  t.equal(readFileSync(join(other, 'key.pem'), 'utf8'), theirs.privateKeyPem());
  t.same(readdirSync(other), ['key.pem'], 'no temp file left after EEXIST');
});

async function rejects(t: Test, p: Promise<unknown>, code: string): Promise<void> {
  await p.then(
    () => t.fail('expected a rejection'),
    (e: NodeJS.ErrnoException) => t.equal(e.code, code),
  );
}

t.test('loadIdentity: no identity, incomplete identity, home that is a file', async (t) => {
  const dir = tmp(t);
  await t.rejects(loadIdentity(''), TypeError);
  await rejectsCode(t, loadIdentity(join(dir, 'missing')), 'PEERPOST_NO_IDENTITY');
  await rejectsCode(t, loadIdentity(dir), 'PEERPOST_NO_IDENTITY');

  const home = join(dir, 'h');
  const { identity } = await loadOrCreateIdentity(home);
  const certPem = readFileSync(join(home, 'cert.pem'));
  // A lost certificate must not lead to a new key being written over the old one.
  writeFileSync(join(home, 'cert.pem'), '');
  const { unlinkSync } = await import('node:fs');
  unlinkSync(join(home, 'cert.pem'));
  const e = await rejectsCode(t, loadOrCreateIdentity(home), 'PEERPOST_IDENTITY_INCOMPLETE');
  t.match(e.message, join(home, 'cert.pem'));
  t.equal(readFileSync(join(home, 'key.pem'), 'utf8'), identity.privateKeyPem());
  writeFileSync(join(home, 'cert.pem'), certPem);
  t.equal((await loadIdentity(home)).fingerprintHex, identity.fingerprintHex);

  const file = join(dir, 'a-file');
  writeFileSync(file, 'x');
  await rejectsCode(t, loadIdentity(file), 'PEERPOST_HOME_UNREADABLE');
  await rejectsCode(t, loadOrCreateIdentity(file), 'PEERPOST_HOME_UNREADABLE');
});

t.test('a key file open to group or others is refused with the chmod hint', async (t) => {
  const home = tmp(t);
  await loadOrCreateIdentity(home);
  const key = join(home, 'key.pem');
  for (const mode of [0o644, 0o640, 0o602]) {
    chmodSync(key, mode);
    const e = await rejectsCode(t, loadIdentity(home), 'PEERPOST_KEY_PERMISSIONS');
    t.match(e.message, key);
    t.match(e.message, `0${mode.toString(8)}`);
    t.match(e.message, `chmod 600 ${key}`);
  }
  chmodSync(key, 0o400);
  t.ok(await loadIdentity(home), 'read-only for the owner is fine');
});

t.test('a key that is not the certificate key is refused', async (t) => {
  const home = tmp(t);
  await loadOrCreateIdentity(home);
  const other = await generateIdentity();
  writeFileSync(join(home, 'key.pem'), other.privateKeyPem(), { mode: 0o600 });
  const e = await rejectsCode(t, loadIdentity(home), 'PEERPOST_KEY_MISMATCH');
  t.match(e.message, 'key.pem');
});

t.test('bad keys are refused: garbage, RSA, P-256, encrypted, a certificate in the key file', async (t) => {
  const home = tmp(t);
  const id = await loadOrCreateIdentity(home);
  const key = join(home, 'key.pem');
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const encrypted = id.identity.privateKey
    .export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'pw' })
    .toString();
  const cases: Array<[string, string, RegExp]> = [
    ['garbage', 'not a key', /PKCS#8/],
    ['broken PEM', '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n', /key\.pem/],
    ['RSA', rsa, /rsa, not Ed25519/],
    ['P-256', ec, /ec, not Ed25519/],
    ['encrypted', encrypted, /encrypted/],
    ['certificate', id.identity.certPem(), /CERTIFICATE/],
  ];
  for (const [name, text, re] of cases) {
    writeFileSync(key, text, { mode: 0o600 });
    const e = await rejectsCode(t, loadIdentity(home), 'PEERPOST_BAD_KEY');
    t.match(e.message, re, name);
  }
});

t.test('certificates refused with their reason: broken DER, expired, not yet valid, bad self-signature', async (t) => {
  const now = Date.now();
  const valid = await generateIdentity();
  const expired = await generateIdentity({ notBefore: new Date(now - 10 * DAY_MS), validityDays: 1 });
  const future = await generateIdentity({ notBefore: new Date(now + 10 * DAY_MS) });
  const badSig = new Uint8Array(valid.cert);
  badSig[badSig.length - 1]! ^= 0x01; // the last byte of the DER is in the signature
  const truncated = valid.cert.subarray(0, valid.cert.length - 20);
  const cases: Array<[string, Identity, Uint8Array | string, string]> = [
    ['truncated DER', valid, truncated, 'bad_der'],
    ['truncated PEM', valid, derToPem(truncated, 'CERTIFICATE'), 'bad_der'],
    ['not a certificate at all', valid, 'hello\n', 'bad_der'],
    ['a key PEM in the cert file', valid, valid.privateKeyPem(), 'bad_der'],
    ['expired', expired, expired.certPem(), 'expired'],
    ['not yet valid', future, future.certPem(), 'not_yet_valid'],
    ['bad self-signature', valid, derToPem(badSig, 'CERTIFICATE'), 'bad_self_signature'],
  ];
  for (const [name, id, certBytes, reason] of cases) {
    const dir = tmp(t);
    const src = writeSources(dir, id, certBytes);
    const e = await rejectsCode(t, importIdentity(join(dir, 'home'), src.cert, src.key), 'PEERPOST_BAD_CERT');
    t.type(e, CertificateRefusedError, name);
    t.equal((e as CertificateRefusedError).reason, reason, name);
    t.match(e.message, src.cert, `${name}: names the file`);
    t.notOk(existsSync(join(dir, 'home')), `${name}: nothing written`);
  }
});

t.test('loadIdentity checks validity at the given time', async (t) => {
  const home = tmp(t);
  const { identity } = await loadOrCreateIdentity(home);
  const check = checkCertificate(identity.cert, Date.now());
  if (!check.ok) throw new Error('fresh identity must be valid');
  const e = await rejectsCode(t, loadIdentity(home, { nowMs: check.notAfterMs + 1 }), 'PEERPOST_BAD_CERT');
  t.equal((e as CertificateRefusedError).reason, 'expired');
  const e2 = await rejectsCode(t, loadIdentity(home, { nowMs: check.notBeforeMs - 1 }), 'PEERPOST_BAD_CERT');
  t.equal((e2 as CertificateRefusedError).reason, 'not_yet_valid');
});

t.test('importIdentity: PEM or DER, refuses to replace without force, replaces with force', async (t) => {
  const dir = tmp(t);
  const home = join(dir, 'home');
  const a = await generateIdentity();
  const srcA = writeSources(dir, a, a.cert); // DER
  const imported = await importIdentity(home, srcA.cert, srcA.key);
  t.equal(imported.fingerprintHex, a.fingerprintHex);
  t.equal((await loadIdentity(home)).fingerprintHex, a.fingerprintHex);
  t.equal(statSync(join(home, 'key.pem')).mode & 0o777, 0o600);

  const b = await generateIdentity();
  const srcB = writeSources(dir, b); // PEM
  const e = await rejectsCode(t, importIdentity(home, srcB.cert, srcB.key), 'PEERPOST_IDENTITY_EXISTS');
  t.match(e.message, '--force');
  t.equal((await loadIdentity(home)).fingerprintHex, a.fingerprintHex, 'unchanged');

  await importIdentity(home, srcB.cert, srcB.key, { force: true });
  t.equal((await loadIdentity(home)).fingerprintHex, b.fingerprintHex);
  t.same(readdirSync(home).sort(), ['cert.pem', 'key.pem']);

  const missing = importIdentity(home, join(dir, 'nope.pem'), srcB.key);
  const e2 = await rejectsCode(t, missing, 'PEERPOST_FILE_UNREADABLE');
  t.type(e2, UsageError);
  t.match(e2.message, /nope\.pem: no such file/);
  await rejectsCode(t, importIdentity(home, srcA.cert, srcB.key, { force: true }), 'PEERPOST_KEY_MISMATCH');
});

t.test('saveIdentity keeps the key private even under a permissive umask', async (t) => {
  const home = tmp(t);
  const old = process.umask(0o000);
  try {
    await saveIdentity(home, await generateIdentity());
  } finally {
    process.umask(old);
  }
  t.equal(statSync(join(home, 'key.pem')).mode & 0o777, 0o600);
  t.ok(await loadIdentity(home));
});

t.test('config.json: missing is empty, round trip, update, broken JSON names the file', async (t) => {
  const dir = tmp(t);
  const home = join(dir, 'home');
  t.same(await readConfig(home), {});
  await writeConfig(home, { peer: '127.0.0.1:4000', other: [1, 2] });
  t.same(await readConfig(home), { peer: '127.0.0.1:4000', other: [1, 2] });
  t.equal(statSync(join(home, 'config.json')).mode & 0o777, 0o600);
  t.same(await updateConfig(home, { peer: '10.0.0.1:5', other: undefined }), { peer: '10.0.0.1:5' });
  t.same(await readConfig(home), { peer: '10.0.0.1:5' });
  t.same(readdirSync(home), ['config.json'], 'no temp files left');

  const file = join(home, 'config.json');
  for (const [text, re] of [
    ['{"peer": ', /not valid JSON/],
    ['[1,2]', /JSON object/],
    ['null', /JSON object/],
    ['{"peer": 5}', /"peer" must be a string/],
    [' '.repeat(70_000), /bytes, more than/],
  ] as const) {
    writeFileSync(file, text);
    const e = await rejectsCode(t, readConfig(home), 'PEERPOST_BAD_CONFIG');
    t.match(e.message, file);
    t.match(e.message, re);
  }
});
