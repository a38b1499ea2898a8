/**
 * The UDP driver with stand-in machines: answers queued in handle() leave the socket, one timer
 * follows pollTimeout(), wake() sends work queued outside handle(), close() stops everything.
 */
import t from 'tap';
import dgram from 'node:dgram';
import { UdpDriver, type DatagramMachine } from '../src/net/index.js';
import type { Addr, Transmit } from '../src/core/types.js';

/** Echoes every datagram back, upper-cased, and can ask for a wakeup at a set time. */
class EchoMachine implements DatagramMachine {
  out: Transmit[] = [];
  deadline: number | undefined;
  timeouts: number[] = [];
  onTimeout: (() => void) | undefined;
  handle(_now: number, from: Addr, data: Uint8Array): void {
    this.out.push({ to: from, data: new TextEncoder().encode(new TextDecoder().decode(data).toUpperCase()) });
  }
  pollTransmit(): Transmit | undefined {
    return this.out.shift();
  }
  pollTimeout(): number | undefined {
    return this.deadline;
  }
  handleTimeout(now: number): void {
    if (this.deadline === undefined || now < this.deadline) return;
    this.timeouts.push(now);
    this.deadline = undefined;
    this.onTimeout?.();
  }
}

function socket(): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  return new Promise((resolve) => s.bind(0, '127.0.0.1', () => resolve(s)));
}

function nextMessage(s: dgram.Socket, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no datagram')), timeoutMs);
    s.once('message', (m) => {
      clearTimeout(timer);
      resolve(m.toString());
    });
  });
}

t.test('answers leave after handle; a burst is answered in order', async (t) => {
  const m = new EchoMachine();
  const d = await UdpDriver.bind(m, { host: '127.0.0.1', port: 0 });
  const s = await socket();
  t.teardown(async () => {
    s.close();
    await d.close();
  });
  const { port } = d.address();
  const got: string[] = [];
  const all = new Promise<void>((resolve) => s.on('message', (b) => got.push(b.toString()) === 20 && resolve()));
  for (let i = 0; i < 20; i++) s.send(`hello ${i}`, port, '127.0.0.1');
  await Promise.race([all, new Promise((_, rej) => setTimeout(() => rej(new Error('timeout')), 2000))]);
  t.same(got, Array.from({ length: 20 }, (_, i) => `HELLO ${i}`));
  t.equal(d.stats.datagramsIn, 20);
  t.equal(d.stats.datagramsOut, 20);
});

t.test('one timer at pollTimeout(); wake() sends work queued outside handle()', async (t) => {
  const m = new EchoMachine();
  let clock = 1_000;
  const d = await UdpDriver.bind(m, { host: '127.0.0.1', port: 0, clock: () => clock });
  const s = await socket();
  t.teardown(async () => {
    s.close();
    await d.close();
  });
  const fired = new Promise<void>((resolve) => (m.onTimeout = resolve));
  m.deadline = 1_020;
  clock = 1_020; // the driver computes the delay from the clock: already due
  d.wake();
  await fired;
  t.same(m.timeouts, [1_020], 'handleTimeout called once with now >= deadline');
  const sa = s.address();
  m.out.push({ to: { host: '127.0.0.1', port: sa.port }, data: new TextEncoder().encode('queued') });
  const msg = nextMessage(s);
  d.wake();
  t.equal(await msg, 'queued');
});

t.test('close() stops the timer and is idempotent', async (t) => {
  const m = new EchoMachine();
  const d = await UdpDriver.bind(m, { host: '127.0.0.1', port: 0 });
  m.deadline = Date.now() + 60_000;
  d.wake();
  await d.close();
  await d.close();
  t.same(m.timeouts, []);
  t.pass('no timer keeps the process alive after close');
});
