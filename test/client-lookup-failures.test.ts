/**
 * Lookup failures name their cause and are bounded in time (real UDP on 127.0.0.1): a contact not
 * registered at its peer is reported as such at once, and a message to a fingerprint whose
 * certificate can never come fails with that reason after unknownSenderGraceMs, not the 7-day TTL.
 */
import t from 'tap';
import { join } from 'node:path';
import { Peer } from '../src/api/peer.js';
import { Client } from '../src/api/client.js';
import { tempDir } from './helpers/cli.js';

const WAIT_MS = 10_000;

function until<T>(c: Client, name: 'delivery' | 'contact-cert', pred: (e: T) => boolean, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), WAIT_MS);
    const on = (e: T): void => {
      if (!pred(e)) return;
      clearTimeout(timer);
      (c.off as (n: string, f: unknown) => void)(name, on);
      resolve(e);
    };
    (c.on as (n: string, f: unknown) => void)(name, on);
  });
}

t.test('not registered there: named at once for a contact, and a message fails after the grace', async (t) => {
  const tmp = tempDir();
  t.teardown(tmp.cleanup);
  const peer = await Peer.start({ port: 0, home: join(tmp.dir, 'p') });
  t.teardown(() => peer.close());
  const c = await Client.start({ peer: peer.address, home: join(tmp.dir, 'c'), options: { unknownSenderGraceMs: 300, certRetryMs: 200 } });
  t.teardown(() => c.close());
  if (!c.registered) await new Promise((r) => c.once('registered', r));
  const nobody = 'cd'.repeat(32);

  const cert = until<{ fingerprint: string; ok: boolean; reason?: string }>(c, 'contact-cert', (e) => e.fingerprint === nobody, 'contact-cert');
  c.addContact(`${nobody}@${peer.address}`, 'nobody');
  const got = await cert;
  t.equal(got.ok, false);
  t.equal(got.reason, 'certificate-not-found', 'the contact is not registered at that peer');

  const started = Date.now();
  const failed = until<{ id: string; state: string; reason?: string }>(c, 'delivery', (e) => e.state === 'failed', 'failed');
  const [id] = c.send('nobody', 'hello?');
  const f = await failed;
  t.equal(f.id, id);
  t.equal(f.reason, 'certificate-not-found');
  t.ok(Date.now() - started < WAIT_MS, `failed after ${Date.now() - started} ms, not after the message TTL`);
});
