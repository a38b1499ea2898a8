/** `peerpost id`, `peerpost id import` and `peerpost node`, run as a separate process. */
import t, { type Test } from 'tap';
import { ChatProcess } from './helpers/chat-process.js';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PeerpostError, UsageError } from '../src/core/errors.js';
import { generateIdentity } from '../src/identity/certificate.js';
import { reportError, wantsStack } from '../src/cli/run.js';
import { runCli, tempDir, type CliResult } from './helpers/cli.js';

const home = tempDir('peerpost-cli-');
t.teardown(home.cleanup);

/** Exactly one line `peerpost: ...` on stderr, no stack trace, nothing on stdout. */
function oneLineError(t: Test, r: CliResult, code: number, re: RegExp): void {
  t.equal(r.code, code, `exit ${code}; stderr: ${r.stderr}`);
  t.equal(r.stdout, '', 'nothing on stdout');
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  t.equal(lines.length, 1, `one line: ${r.stderr}`);
  t.match(lines[0] ?? '', /^peerpost: /);
  t.match(lines[0] ?? '', re);
  t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
}

t.test('id --json creates an identity, then shows the same one', async (t) => {
  const h = join(home.dir, 'a');
  const first = await runCli(['id', '--home', h, '--json']);
  t.equal(first.code, 0, first.stderr);
  const j1 = JSON.parse(first.stdout) as Record<string, unknown>;
  t.match(j1['fingerprint'], /^[0-9a-f]{64}$/);
  t.equal(j1['home'], h);
  t.equal(j1['created'], true);
  t.ok(!Number.isNaN(Date.parse(String(j1['notAfter']))), 'notAfter is a date');
  t.equal(new Date(String(j1['notAfter'])).toISOString(), j1['notAfter'], 'notAfter is ISO 8601');
  t.match(first.stderr, `created a new identity in ${h}`);

  const second = await runCli(['id', '--json'], { env: { PEERPOST_HOME: h } });
  t.equal(second.code, 0, second.stderr);
  const j2 = JSON.parse(second.stdout) as Record<string, unknown>;
  t.equal(j2['fingerprint'], j1['fingerprint']);
  t.equal(j2['created'], false);
  t.equal(second.stderr, '', 'nothing on stderr when nothing was created');
});

t.test('id prints fingerprint, subject and validity as text', async (t) => {
  const h = join(home.dir, 'b');
  const r = await runCli(['id'], { env: { XDG_CONFIG_HOME: h } });
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^fingerprint +[0-9a-f]{64}$/m);
  t.match(r.stdout, /^subject +CN=peerpost$/m);
  t.match(r.stdout, /^valid +\d{4}-\d\d-\d\dT.* to \d{4}-/m);
  t.match(r.stdout, `home         ${join(h, 'peerpost')}`);
});

t.test('bad option values and unknown options exit 2 with one line', async (t) => {
  oneLineError(t, await runCli(['id', '--home', join(home.dir, 'c'), '--log-level', 'loud']), 2, /log-level/);
  oneLineError(t, await runCli(['id', '--home', join(home.dir, 'c'), '--bogus']), 2, /bogus/);
  const bare = await runCli([]);
  t.equal(bare.code, 0, 'peerpost alone prints the command list');
  t.match(bare.stdout, /peerpost <command>/);
  t.match(bare.stdout, /contacts <action>/);
  oneLineError(t, await runCli(['id', 'import', '--home', join(home.dir, 'c'), '--cert', 'x.pem']), 2, /key/);
  oneLineError(t, await runCli(['id', '--home']), 2, /home/);
});

t.test('--help and --version', async (t) => {
  const help = await runCli(['id', '--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /peerpost id import/);
  t.match(help.stdout, /--json/);
  const importHelp = await runCli(['id', 'import', '--help']);
  t.equal(importHelp.code, 0);
  t.match(importHelp.stdout, /--cert/);
  t.match(importHelp.stdout, /--force/);
  const version = await runCli(['--version']);
  t.equal(version.code, 0);
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  t.equal(version.stdout.trim(), pkg.version);
});

t.test('id import: works, refuses to overwrite, errors are one line', async (t) => {
  const dir = join(home.dir, 'import');
  const h = join(dir, 'home');
  const a = await generateIdentity({ commonName: 'imported' });
  const b = await generateIdentity();
  const { mkdirSync } = await import('node:fs');
  mkdirSync(dir, { recursive: true });
  const certA = join(dir, 'a-cert.pem');
  const keyA = join(dir, 'a-key.pem');
  const keyB = join(dir, 'b-key.pem');
  writeFileSync(certA, a.certPem());
  writeFileSync(keyA, a.privateKeyPem(), { mode: 0o600 });
  writeFileSync(keyB, b.privateKeyPem(), { mode: 0o600 });

  const ok = await runCli(['id', 'import', '--home', h, '--cert', certA, '--key', keyA, '--json']);
  t.equal(ok.code, 0, ok.stderr);
  t.equal((JSON.parse(ok.stdout) as { fingerprint: string }).fingerprint, a.fingerprintHex);
  const shown = await runCli(['id', '--home', h, '--json']);
  t.equal((JSON.parse(shown.stdout) as { fingerprint: string }).fingerprint, a.fingerprintHex);
  t.match(JSON.parse(shown.stdout), { subject: 'CN=imported', created: false });

  oneLineError(t, await runCli(['id', 'import', '--home', h, '--cert', certA, '--key', keyA]), 1, /already holds an identity.*--force/);
  oneLineError(t, await runCli(['id', 'import', '--home', h, '--cert', certA, '--key', keyB, '--force']), 1, /not the key of the certificate/);
  oneLineError(t, await runCli(['id', 'import', '--home', h, '--cert', join(dir, 'none.pem'), '--key', keyA]), 2, /none\.pem: no such file/);
  oneLineError(t, await runCli(['id', 'import', '--home', h, '--cert', keyA, '--key', keyA, '--force']), 1, /bad_der/);
  t.equal((await runCli(['id', 'import', '--home', h, '--cert', certA, '--key', keyA, '--force'])).code, 0, 'force replaces');
});

t.test('a key file readable by others is refused with the chmod hint', async (t) => {
  const h = join(home.dir, 'perm');
  t.equal((await runCli(['id', '--home', h])).code, 0);
  const key = join(h, 'key.pem');
  chmodSync(key, 0o644);
  oneLineError(t, await runCli(['id', '--home', h]), 1, new RegExp(`${key} has mode 0644.*chmod 600 ${key}`));
  const debug = await runCli(['id', '--home', h, '--log-level', 'debug']);
  t.equal(debug.code, 1);
  t.match(debug.stderr, /\n\s+at /, 'stack trace with --log-level debug');
});

t.test('node runs with the same identity, prints its address and code, and stops cleanly on SIGTERM', async (t) => {
  const h = join(home.dir, 'node');
  const id = await runCli(['id', '--home', h, '--json']);
  const j = JSON.parse(id.stdout) as { fingerprint: string; code: string };
  const node = ChatProcess.start(['node', '--home', h, '--port', '0', '--json']);
  const ready = await node.waitFor((e) => e.event === 'ready', 'node ready');
  t.equal(ready.fingerprint, j.fingerprint);
  t.equal(ready.code, j.code);
  t.match(ready.address, new RegExp(`^${j.fingerprint}@127\\.0\\.0\\.1:\\d+$`));
  t.equal(await node.stop(), 0);
});

t.test('--log-file receives the logs; stderr stays clean', async (t) => {
  const h = join(home.dir, 'logs');
  const logFile = join(home.dir, 'logs', 'sub', 'peerpost.log');
  t.equal((await runCli(['id', '--home', h])).code, 0);
  const r = await runCli(['id', '--home', h, '--log-level', 'debug', '--log-file', logFile]);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stderr, '');
  const lines = readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { msg?: string; level?: number });
  t.ok(lines.some((l) => l.msg === 'identity loaded' && l.level === 20), 'debug line in the file');
  oneLineError(t, await runCli(['id', '--home', h, '--log-file', join(h, 'cert.pem', 'x.log')]), 2, /cannot open the log file/);
});

t.test('reportError: exit codes and one line, stack only when asked', async (t) => {
  const capture = (): { io: { stdout: { write(s: string): void }; stderr: { write(s: string): void } }; out: string[] } => {
    const out: string[] = [];
    return { io: { stdout: { write: (s) => out.push(`1:${s}`) }, stderr: { write: (s) => out.push(s) } }, out };
  };
  const c1 = capture();
  t.equal(reportError(new UsageError('X', 'bad\n  input'), c1.io, false), 2);
  t.same(c1.out, ['peerpost: bad input\n']);
  const c2 = capture();
  t.equal(reportError(new PeerpostError('Y', 'failed'), c2.io, false), 1);
  t.same(c2.out, ['peerpost: failed\n']);
  const c3 = capture();
  t.equal(reportError(new TypeError('boom'), c3.io, false), 1);
  t.same(c3.out, ['peerpost: unexpected error: boom\n']);
  const c4 = capture();
  t.equal(reportError(new TypeError('boom'), c4.io, true), 1);
  t.equal(c4.out.length, 2);
  t.match(c4.out[1], /TypeError: boom\n\s+at /);
  t.equal(wantsStack(['id', '--log-level', 'debug']), true);
  t.equal(wantsStack(['--log-level=trace']), true);
  t.equal(wantsStack(['--log-level', 'info', 'debug']), false);
});
