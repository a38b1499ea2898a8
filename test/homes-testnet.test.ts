/**
 * Failover end to end on 127.0.0.1 (real UDP, a private HyperDHT testnet of 10 nodes): three
 * peers; Alice registered with P1 and P2 publishes her home record; Bob, on P3, adds her by
 * fingerprint alone. P1 stops for good: Bob's next message reaches her through P2. Alice moves to
 * P3 only and P2 stops: Bob's next message still reaches her. Each exactly once, with no action
 * on Bob's side; the time each failover took is printed.
 */
import t from 'tap';
import createTestnet from 'hyperdht/testnet.js';
import { join } from 'node:path';
import { Peer } from '../src/api/peer.js';
import { Client } from '../src/api/client.js';
import { HomeDht } from '../src/discovery/home-dht.js';
import { homeResolverFor, keepHomePublished, resolveAddress } from '../src/cli/dht.js';
import { generateIdentity } from '../src/identity/certificate.js';
import { tempDir } from './helpers/cli.js';

/** Wait for `done()` (checked every 50 ms) at most `ms`; true when it held. */
async function until(done: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await done()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return done();
}

t.test('a contact added by fingerprint follows its peers: one killed, then a move', async (t) => {
  const tmp = tempDir('peerpost-homes-');
  t.teardown(tmp.cleanup);
  const tn = await createTestnet(10, { host: '127.0.0.1' });
  t.teardown(() => tn.destroy());
  const peers = await Promise.all([1, 2, 3].map(async (i) => Peer.start({ port: 0, identity: await generateIdentity({ commonName: `p${i}` }), summaryIntervalMs: 0 })));
  const [p1, p2, p3] = peers as [Peer, Peer, Peer];
  t.teardown(async () => { for (const p of peers) await p.close().catch(() => {}); });

  const alice = await Client.start({ peer: p1.address, morePeers: [p2.address], home: join(tmp.dir, 'alice') });
  const bob = await Client.start({ peer: p3.address, home: join(tmp.dir, 'bob') });
  t.teardown(async () => { await alice.close(); await bob.close(); });
  const aliceDht = new HomeDht({ bootstrap: tn.bootstrap });
  const bobDht = new HomeDht({ bootstrap: tn.bootstrap });
  t.teardown(async () => { await aliceDht.close(); await bobDht.close(); });
  const published = keepHomePublished(alice, aliceDht, join(tmp.dir, 'alice'), () => alice.homePeers());
  t.teardown(() => published.stop());
  bob.setHomeResolver(homeResolverFor(bobDht));

  const shown = new Map<string, number>();
  alice.on('message', (m) => shown.set(m.id, (shown.get(m.id) ?? 0) + 1));
  const recordPorts = async (): Promise<number[]> => {
    const r = await bobDht.resolve(alice.identity.fingerprint);
    return r.ok ? r.home.record.peers.map((p) => p.port) : [];
  };
  const port = (p: Peer): number => Number(p.address.split(':').pop());

  t.ok(await until(() => alice.peers().every((p) => p.registered) && bob.registered, 20_000), 'Alice registered with P1 and P2, Bob with P3');
  t.ok(await until(async () => (await recordPorts()).join() === [port(p1), port(p2)].join(), 30_000), 'her record lists P1, P2');

  // Bob knows only her fingerprint.
  const found = await resolveAddress(bobDht, alice.fingerprint);
  bob.addContact(found.address, 'alice', found.cert);
  alice.addContact(`${bob.fingerprint}@${p3.address}`, 'bob', bob.identity.cert);

  const deliver = async (text: string): Promise<{ id: string; ms: number }> => {
    const at = Date.now();
    const [id] = bob.send('alice', text);
    const ok = await until(() => bob.messageState(id!)?.state === 'delivered', 120_000);
    return { id: id!, ms: ok ? Date.now() - at : -1 };
  };
  const first = await deliver('hello through P1');
  t.ok(first.ms >= 0, `delivered (${first.ms} ms)`);

  await p1.close();
  const second = await deliver('P1 is gone');
  t.ok(second.ms >= 0, 'delivered through P2 after P1 stopped');
  console.error(`failover 1 (P1 stopped, P2 listed): ${second.ms} ms`);

  alice.setPeers([p3.address]);
  t.ok(await until(async () => (await recordPorts()).join() === String(port(p3)), 30_000), 'her new record lists P3 only');
  await p2.close();
  const third = await deliver('you moved');
  t.ok(third.ms >= 0, 'delivered through P3 after she moved and P2 stopped');
  console.error(`failover 2 (moved to P3, P2 stopped): ${third.ms} ms`);

  await new Promise((r) => setTimeout(r, 1000));
  for (const m of [first, second, third]) t.equal(shown.get(m.id), 1, `message ${m.id.slice(0, 8)} shown exactly once`);
  t.equal([...shown.values()].reduce((a, b) => a + b, 0), 3, 'nothing else shown');
});
