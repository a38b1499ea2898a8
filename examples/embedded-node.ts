/**
 * A node embedded in an application: an echo service that answers every message it gets, and a
 * second node (a user) that talks to it. Each node is its own peer and a client of it, on one
 * UDP socket.
 *
 *   npm run build && node --import tsx examples/embedded-node.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Node } from 'peerpost';

const dir = mkdtempSync(join(tmpdir(), 'peerpost-example-'));

// The application: an echo service.
const echo = await Node.start({ host: '127.0.0.1', port: 0, home: join(dir, 'echo') });
echo.on('message', (m) => {
  // A stranger's first message carries its address; keep it as a contact to answer.
  const name = `user-${m.from.slice(0, 8)}`;
  if (!echo.contacts().some((c) => c.fingerprint === m.from)) echo.addContact(`${m.from}@${m.fromPeer}`, name);
  echo.send(name, `echo: ${m.text}`);
});
console.log(`echo service at ${echo.address}`);

// A user somewhere else.
const user = await Node.start({ host: '127.0.0.1', port: 0, home: join(dir, 'user') });
user.addContact(echo.address, 'echo');
const reply = new Promise<string>((resolve) => user.once('message', (m) => resolve(m.text)));
user.send('echo', 'ping');
console.log(`user got: ${await reply}`);

await Promise.all([user.close(), echo.close()]);
rmSync(dir, { recursive: true, force: true });
console.log('done');
