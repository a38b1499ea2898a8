/**
 * The chat's one line for a restarted encrypted session (src/cli/chat.ts, `session-restarted`):
 * what it says for each side, that the contact's name goes through the one door for text
 * (safeText), and that a fingerprint that is no contact (a home that lost its store) is shown by
 * its first hex digits. A real node on 127.0.0.1; the event is the one its Messenger emits.
 */
import t from 'tap';
import { PassThrough } from 'node:stream';
import { join } from 'node:path';
import { Node } from '../src/api/index.js';
import { runChat } from '../src/cli/chat.js';
import { generateIdentity } from '../src/identity/certificate.js';
import { tempDir } from './helpers/cli.js';

t.test('session-restarted: one line for each side, names through safeText, strangers by fingerprint', async (t) => {
  const tmp = tempDir();
  t.teardown(tmp.cleanup);
  const node = await Node.start({ home: join(tmp.dir, 'a'), host: '127.0.0.1', port: 0 });
  t.teardown(() => node.close());
  const bob = (await generateIdentity())!;
  const stranger = (await generateIdentity())!;
  node.addContact(`${bob.fingerprintHex}@127.0.0.1:9`, 'bob-1', bob.cert);

  let written = '';
  const input = new PassThrough();
  let end!: () => void;
  const stop = new Promise<void>((r) => (end = r));
  const io = { stdout: { write: (s: string) => (written += s) }, stderr: { write: () => true } };
  const chat = runChat(node, { io, json: false, title: 'test', input, interactive: false, colour: false }, stop);
  const waitFor = async (re: RegExp): Promise<string> => {
    for (let i = 0; i < 200 && !re.test(written); i++) await new Promise((r) => setImmediate(r));
    return written.split('\n').find((l) => re.test(l)) ?? '';
  };
  await waitFor(/type \/help/);

  node.emit('session-restarted', { with: bob.fingerprintHex, by: 'them' });
  t.equal(await waitFor(/restarted the encrypted session with you/),
    'bob-1 restarted the encrypted session with you (their side was lost or restored); messages they missed are sent again');
  node.emit('session-restarted', { with: bob.fingerprintHex, by: 'us' });
  t.equal(await waitFor(/^encrypted session with bob-1 restarted/),
    'encrypted session with bob-1 restarted (our messages stopped getting through); messages they missed are sent again');
  node.emit('session-restarted', { with: stranger.fingerprintHex, by: 'them' });
  t.equal(await waitFor(new RegExp(`^\\?${stranger.fingerprintHex.slice(0, 12)} restarted`)),
    `?${stranger.fingerprintHex.slice(0, 12)} restarted the encrypted session with you (their side was lost or restored); messages they missed are sent again`,
    'a fingerprint that is no contact: its first 12 hex digits');
  // Whatever the event carries reaches the terminal only through safeText.
  node.emit('session-restarted', { with: '\x1b]0;owned\x07\u202e', by: 'us' });
  const hostile = await waitFor(/owned/);
  t.notMatch(hostile, /[\x00-\x1f\x7f\u202e]/, 'no control or bidi character reaches the terminal');
  t.match(hostile, /\^\[\]0;owned\^G<U\+202E>/, 'they are made visible');

  end();
  input.end();
  await chat;
});
