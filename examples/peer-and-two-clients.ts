/**
 * A peer and two clients in one script: Alice and Bob both use one peer on 127.0.0.1, Alice adds
 * Bob as a contact and sends him a message; Bob answers; both see the end-to-end receipts.
 *
 *   npm run build && node --import tsx examples/peer-and-two-clients.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Peer } from 'peerpost';

const dir = mkdtempSync(join(tmpdir(), 'peerpost-example-'));
const once = <T>(emitter: { once(name: string, f: (v: T) => void): unknown }, name: string): Promise<T> =>
  new Promise((resolve) => emitter.once(name, resolve));

const peer = await Peer.start({ host: '127.0.0.1', port: 0, home: join(dir, 'peer'), rateLimit: null });
console.log(`peer listening on ${peer.address}`);

const alice = await Client.start({ peer: peer.address, home: join(dir, 'alice') });
const bob = await Client.start({ peer: peer.address, home: join(dir, 'bob') });
await Promise.all([alice.registered || once(alice, 'registered'), bob.registered || once(bob, 'registered')]);
console.log(`alice is ${alice.address}`);
console.log(`bob   is ${bob.address}`);

alice.addContact(bob.address, 'bob');
bob.addContact(alice.address, 'alice');

const bobGot = once<{ fromName?: string; text: string }>(bob, 'message');
const [id] = alice.send('bob', 'hello Bob, this is Alice');
const m = await bobGot;
console.log(`bob received from ${m.fromName}: ${m.text}`);

await new Promise<void>((resolve) => {
  alice.on('delivery', (d) => {
    if (d.id === id && d.state === 'delivered') resolve();
  });
});
console.log('alice saw the end-to-end receipt: delivered');

const aliceGot = once<{ fromName?: string; text: string }>(alice, 'message');
bob.send('alice', 'hi Alice!');
const r = await aliceGot;
console.log(`alice received from ${r.fromName}: ${r.text}`);

const codes = await alice.codes('bob');
console.log(`alice's code ${codes.mine}, bob's code ${codes.theirs}, safety number ${codes.safetyNumber}`);

await Promise.all([alice.close(), bob.close(), peer.close()]);
rmSync(dir, { recursive: true, force: true });
console.log('done');
