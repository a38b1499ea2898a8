/**
 * Several peers from the command line: `--peer A --peer B` on one-shot commands (registered with
 * both, both saved), and `peerpost peers list|add|remove`, run as separate processes on 127.0.0.1.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChatProcess } from './helpers/chat-process.js';
import { runCli, tempDir } from './helpers/cli.js';

const tmp = tempDir('peerpost-peers-');
t.teardown(tmp.cleanup);

async function listed(home: string): Promise<string[]> {
  const r = await runCli(['peers', 'list', '--home', home, '--json']);
  if (r.code !== 0) throw new Error(r.stderr);
  return (JSON.parse(r.stdout) as { peers: string[] }).peers;
}

t.test('peers add, list and remove edit the saved list; bad changes are refused with one clear line', async (t) => {
  const home = join(tmp.dir, 'edit');
  const empty = await runCli(['peers', 'list', '--home', home]);
  t.equal(empty.code, 0, empty.stderr);
  t.match(empty.stderr + empty.stdout, /no peers saved/);
  t.equal((await runCli(['peers', 'add', '127.0.0.1:7001', '--home', home])).code, 0);
  t.equal((await runCli(['peers', 'add', 'localhost:7002', '--home', home])).code, 0, 'a host name is resolved');
  t.equal((await runCli(['peers', 'add', '127.0.0.1:7001', '--home', home])).code, 0, 'adding one twice changes nothing');
  t.same(await listed(home), ['127.0.0.1:7001', '127.0.0.1:7002'], 'in the order added');
  const cfg = JSON.parse(readFileSync(join(home, 'config.json'), 'utf8')) as { peer: string; peers: string[] };
  t.equal(cfg.peer, '127.0.0.1:7001', 'the first is also saved as the peer');
  const unknown = await runCli(['peers', 'remove', '127.0.0.1:7999', '--home', home]);
  t.not(unknown.code, 0);
  t.match(unknown.stderr, /^peerpost: .*127\.0\.0\.1:7999 is not one of your peers/);
  t.notMatch(unknown.stderr, /\n\s+at /, 'no stack trace');
  const bad = await runCli(['peers', 'add', 'nonsense', '--home', home]);
  t.not(bad.code, 0, 'not HOST:PORT');
  t.equal((await runCli(['peers', 'remove', '127.0.0.1:7001', '--home', home])).code, 0);
  t.same(await listed(home), ['127.0.0.1:7002']);
  const last = await runCli(['peers', 'remove', '127.0.0.1:7002', '--home', home]);
  t.not(last.code, 0, 'the only peer stays');
  t.match(last.stderr, /only peer/);
});

t.test('a one-shot command with two --peer saves both; with the first one gone the second one serves', async (t) => {
  const p1 = ChatProcess.start(['peer', '--home', join(tmp.dir, 'p1'), '--port', '0', '--json']);
  const p2 = ChatProcess.start(['peer', '--home', join(tmp.dir, 'p2'), '--port', '0', '--json']);
  t.teardown(() => p1.stop());
  t.teardown(() => p2.stop());
  const a1 = (await p1.waitFor((e) => e.event === 'listening', 'p1 listening')).address as string;
  const a2 = (await p2.waitFor((e) => e.event === 'listening', 'p2 listening')).address as string;
  const home = join(tmp.dir, 'two');
  const r = await runCli(['inbox', '--home', home, '--peer', a1, '--peer', a2, '--quiet', '0.5']);
  t.equal(r.code, 0, r.stderr);
  t.same(await listed(home), [a1, a2], 'both saved, in order');
  // With the first peer gone, the second one still serves one-shot commands.
  await p1.stop();
  const again = await runCli(['inbox', '--home', home, '--quiet', '0.5', '--timeout', '10']);
  t.equal(again.code, 0, `registered with the second peer alone: ${again.stderr}`);
});
