/**
 * Real UDP on 127.0.0.1 (port 0): a peer driven by UdpDriver and two raw protocol-level clients,
 * each on its own UdpDriver, exchanging messages online and offline. Tests wait for datagrams
 * (with a bound), never sleep.
 */
import t from 'tap';
import { startPeer, UdpDriver } from '../src/net/index.js';
import { PeerpostError } from '../src/core/errors.js';
import { identityNo } from './helpers/link.js';
import { RawClient } from './helpers/raw-client.js';

async function client(i: number): Promise<{ c: RawClient; d: UdpDriver }> {
  const c = new RawClient(await identityNo(i));
  const d = await UdpDriver.bind(c, { host: '127.0.0.1', port: 0 });
  return { c, d };
}

t.test('two raw clients exchange messages through a peer over UDP', async (t) => {
  const running = await startPeer({ host: '127.0.0.1', port: 0, identity: await identityNo(0), pushAckTimeoutMs: 200 });
  const peerAddr = running.address;
  t.ok(peerAddr.port > 0, `peer bound to 127.0.0.1:${peerAddr.port}`);
  const a = await client(1);
  const b = await client(2);
  const c = await client(3);
  t.teardown(async () => {
    await Promise.all([a.d.close(), b.d.close(), c.d.close(), running.close()]);
  });

  // Online: B registers, A gets a cookie and delivers, B acks the push, A learns 200.
  b.c.register(peerAddr);
  b.d.wake();
  await b.c.until(() => b.c.registered, 2000, 'B registered');
  a.c.hello(peerAddr);
  a.d.wake();
  await a.c.until(() => a.c.cookies.size === 1, 2000, 'cookie for A');
  const blob = new TextEncoder().encode('sealed bytes, opaque to the peer');
  const id = a.c.deliver(peerAddr, b.c.fingerprint, blob);
  a.d.wake();
  await a.c.until(() => a.c.resultsOf(id).length > 0, 2000, 'RESULT for A');
  t.same(a.c.resultsOf(id), [200]);
  t.same(b.c.pushes.map((p) => Buffer.from(p.blob).toString()), ['sealed bytes, opaque to the peer']);

  // Offline: C is not registered, so A hears 300 at once; C registers and gets the PUSH.
  const id2 = a.c.deliver(peerAddr, c.c.fingerprint, blob);
  a.d.wake();
  await a.c.until(() => a.c.resultsOf(id2).length > 0, 2000, 'RESULT 300');
  t.same(a.c.resultsOf(id2), [300]);
  t.equal(running.peer.stats().waitingMessages, 1);
  c.c.register(peerAddr);
  c.d.wake();
  await c.c.until(() => c.c.pushes.length === 1, 2000, 'PUSH to C');
  t.same(c.c.pushes[0]!.id, id2);
  // C's ACK went first; the OK to a KEEPALIVE sent after it shows the peer has handled it.
  const oks = c.c.inbox.filter((r) => r.msg.type === 1).length;
  c.c.keepalive();
  c.d.wake();
  await c.c.until(() => c.c.inbox.filter((r) => r.msg.type === 1).length > oks, 2000, 'OK to the keepalive');
  t.equal(running.peer.stats().waitingMessages, 0, 'acked message left the peer');

  // No ACK: the driver's timer fires the push timeout and A hears 300 (pushAckTimeoutMs 200).
  b.c.autoAck = false;
  const id3 = a.c.deliver(peerAddr, b.c.fingerprint, blob);
  a.d.wake();
  await a.c.until(() => a.c.resultsOf(id3).length > 0, 3000, 'RESULT after the push timeout');
  t.same(a.c.resultsOf(id3), [300]);
  t.equal(b.c.pushes.length, 2, 'B got the push but did not ack');
  t.ok(running.peer.stats().datagramsIn >= 8);
  t.equal(running.driver.stats.machineErrors, 0);
});

t.test('a port in use gives PEERPOST_PORT_IN_USE with the address', async (t) => {
  const first = await startPeer({ host: '127.0.0.1', port: 0, identity: await identityNo(0) });
  t.teardown(() => first.close());
  const port = first.address.port;
  const err = await startPeer({ host: '127.0.0.1', port, identity: await identityNo(0) }).then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(err instanceof PeerpostError);
  t.equal((err as PeerpostError).code, 'PEERPOST_PORT_IN_USE');
  t.equal((err as PeerpostError).message, `port 127.0.0.1:${port} is already in use`);
});

t.test('bind addresses must be literal IPs', async (t) => {
  const c = new RawClient(await identityNo(1));
  await t.rejects(UdpDriver.bind(c, { host: 'localhost', port: 0 }), { code: 'PEERPOST_BAD_HOST' });
  await t.rejects(UdpDriver.bind(c, { host: '127.0.0.1', port: 70000 }), { code: 'PEERPOST_BAD_PORT' });
});

t.test('IPv6 loopback, when available', async (t) => {
  let d: UdpDriver;
  const c = new RawClient(await identityNo(1));
  try {
    d = await UdpDriver.bind(c, { host: '::1', port: 0 });
  } catch (e) {
    t.comment(`no IPv6 loopback here: ${(e as Error).message}`);
    t.pass('skipped');
    return;
  }
  t.equal(d.address().host, '::1');
  await d.close();
  await d.close(); // idempotent
});
