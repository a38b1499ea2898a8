/**
 * Flood test over real UDP on loopback: does a registered client still get its messages while
 * the peer receives 20,000 HELLOs per second from 256 source addresses and another source
 * tries to fill its storage with throwaway identities?
 *
 *   node --import tsx scripts/flood/run.ts        (npm run test:flood)
 *
 * Processes, all on 127/8 and all started here: the peer (public Peer API, its own process), the
 * HELLO flooder and the storage filler (public Client API; both at a lower CPU priority, see
 * start()), and in this process two public Clients,
 * Alice (127.0.2.2) and Bob (127.0.1.2), registered at the peer. After a warm-up message, the
 * flood and the filler start; Alice sends Bob one message every MESSAGE_INTERVAL_MS for
 * SEND_MS, the flood goes on until every message arrived or GRACE_MS after the last one. Printed:
 * delivered share, p50/p99/max latency (send() to Bob's 'message' event), the flood's real rate,
 * the peer's counters and CPU. Exits 1 below PASS_SHARE, 2 if it could not run. Bounded by
 * RUN_CAP_MS; it ends only the processes it started, by their pids.
 *
 * Environment: PP_FLOOD_RATE (HELLOs/s, default 20000), PP_FLOOD_SEND_MS (default 15000).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '../../src/api/index.js';
import type { ToChild, ToParent } from './child.js';

const RATE = Number(process.env.PP_FLOOD_RATE ?? 20_000);
const SEND_MS = Number(process.env.PP_FLOOD_SEND_MS ?? 15_000);
const MESSAGE_INTERVAL_MS = 100;
const GRACE_MS = 15_000;
const PASS_SHARE = 0.99;
const RUN_CAP_MS = 110_000;
const CHILD_LIFETIME_MS = RUN_CAP_MS + 10_000;
const STORAGE_BYTES = 4 * 1024 * 1024;
const ATTACKER_NICE = 10;
const here = (f: string): string => fileURLToPath(new URL(f, import.meta.url));

interface Child {
  name: string;
  proc: ChildProcess;
  messages: ToParent[];
  waiters: Array<{ type: string; resolve: (m: ToParent) => void }>;
}

const children: Child[] = [];

/**
 * Fork `file` as a child. `nice`: the attackers run at a lower CPU priority, since on a real
 * network their CPU is not the peer's; on a machine of two cores they would otherwise slow the
 * peer and the honest clients by competing for the cores, which is not what is measured here.
 */
function start(name: string, file: string, args: string[], nice = 0): Child {
  const proc = fork(here(file), [...args, '--lifetime-ms', String(CHILD_LIFETIME_MS)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  if (nice && proc.pid !== undefined) setPriority(proc.pid, nice);
  const c: Child = { name, proc, messages: [], waiters: [] };
  proc.on('message', (m: ToParent) => {
    c.messages.push(m);
    if (m.type === 'error') process.stderr.write(`${name}: ${String(m.message)}\n`);
    c.waiters = c.waiters.filter((w) => (w.type === m.type ? (w.resolve(m), false) : true));
  });
  children.push(c);
  return c;
}

/** The next message of `type` from `c` (or one already received), within `ms`. */
function expect(c: Child, type: string, ms: number): Promise<ToParent> {
  const had = c.messages.find((m) => m.type === type);
  if (had) return Promise.resolve(had);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${c.name}: no '${type}' within ${ms} ms`)), ms);
    c.waiters.push({ type, resolve: (m) => (clearTimeout(timer), resolve(m)) });
    c.proc.once('exit', (code) => reject(new Error(`${c.name} exited (${code}) before '${type}'`)));
  });
}

function tell(c: Child, m: ToChild): void {
  if (c.proc.connected) c.proc.send(m);
}

/** End every child still running, by its pid. */
function killChildren(): void {
  for (const c of children) if (c.proc.exitCode === null && c.proc.pid !== undefined) c.proc.kill('SIGKILL');
}

/** Resolves true once `cond` holds (checked every 100 ms), false after `ms`. */
function until(cond: () => boolean, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const timer = setInterval(() => {
      if (cond() || Date.now() - t0 >= ms) {
        clearInterval(timer);
        resolve(cond());
      }
    }, 100);
  });
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
}

async function main(): Promise<number> {
  const root = mkdtempSync(join(tmpdir(), 'pp-flood-'));
  const clients: Client[] = [];
  try {
    const peerProc = start('peer', 'peer.ts', ['--storage-bytes', String(STORAGE_BYTES)]);
    const peer = String((await expect(peerProc, 'ready', 20_000)).address);
    const flooder = start('hello-flooder', 'hello-flooder.ts', ['--peer', peer, '--rate', String(RATE), '--sources', '256'], ATTACKER_NICE);
    const filler = start('storage-filler', 'storage-filler.ts', ['--peer', peer, '--identities', '48', '--senders', '4', '--per-identity', '4'], ATTACKER_NICE);
    const bob = await Client.start({ peer, home: join(root, 'bob'), host: '127.0.1.2' });
    const alice = await Client.start({ peer, home: join(root, 'alice'), host: '127.0.2.2' });
    clients.push(bob, alice);
    if (!(await until(() => bob.registered && alice.registered, 10_000))) throw new Error('Alice and Bob did not register');
    alice.addContact(`${bob.fingerprint}@${peer}`, 'bob');
    const arrived = new Map<string, number>();
    bob.on('message', (m) => arrived.set(m.text, Date.now()));
    alice.send('bob', 'warm-up');
    if (!(await until(() => arrived.has('warm-up'), 10_000))) throw new Error('the warm-up message did not arrive');
    await Promise.all([expect(flooder, 'ready', 20_000), expect(filler, 'ready', 60_000)]);

    const floodStart = Date.now();
    tell(flooder, { type: 'start' });
    tell(filler, { type: 'start' });
    const sentAt = new Map<string, number>();
    for (let i = 0; Date.now() - floodStart < SEND_MS; i++) {
      const text = `honest ${i}`;
      sentAt.set(text, Date.now());
      alice.send('bob', text);
      await new Promise((r) => setTimeout(r, MESSAGE_INTERVAL_MS));
    }
    const allIn = (): boolean => [...sentAt.keys()].every((k) => arrived.has(k));
    await until(allIn, GRACE_MS);
    const floodMs = Date.now() - floodStart;
    tell(flooder, { type: 'stop' });
    tell(filler, { type: 'stop' });
    const [fl, fi] = await Promise.all([expect(flooder, 'stats', 10_000), expect(filler, 'stats', 20_000)]);
    tell(peerProc, { type: 'stop' });
    const ps = await expect(peerProc, 'stats', 10_000);

    const lat = [...sentAt].filter(([k]) => arrived.has(k)).map(([k, t]) => arrived.get(k)! - t).sort((a, b) => a - b);
    const share = lat.length / sentAt.size;
    const stats = ps.stats as { datagramsIn: number; datagramsOut: number; waitingMessages: number; waitingBytes: number; drops: object; errorsSent: object };
    const line = (s: string): boolean => process.stdout.write(`${s}\n`);
    line(`flood: ${Number(fl.sent).toLocaleString()} HELLOs of ${String(fl.helloBytes)} B from ${String(fl.sources)} addresses in ${(Number(fl.ms) / 1000).toFixed(1)} s ` +
      `= ${Math.round((Number(fl.sent) * 1000) / Number(fl.ms)).toLocaleString()}/s (asked ${RATE.toLocaleString()}/s); ${Number(fl.answers).toLocaleString()} answers came back`);
    line(`storage filler: ${String(fi.registered)} registered, ${String(fi.abandoned)} abandoned, ${String(fi.sent)} messages queued by 4 senders; ` +
      `at the end: ${JSON.stringify(fi.outbox)}; client drops ${JSON.stringify(fi.drops)}`);
    line(`peer: ${stats.datagramsIn.toLocaleString()} datagrams in, ${stats.datagramsOut.toLocaleString()} out, CPU ${(Number(ps.cpuMs) / 1000).toFixed(1)} s over the run; ` +
      `waiting ${stats.waitingMessages} messages (${stats.waitingBytes} B of blobs, storage ${STORAGE_BYTES / 1048576} MiB); drops ${JSON.stringify(stats.drops)}; errors ${JSON.stringify(stats.errorsSent)}`);
    line(`honest: ${lat.length}/${sentAt.size} delivered (${(share * 100).toFixed(1)}%) within ${(floodMs / 1000).toFixed(1)} s of flood; latency p50 ${percentile(lat, 0.5)} ms, ` +
      `p99 ${percentile(lat, 0.99)} ms, max ${lat.at(-1) ?? NaN} ms`);
    const floodRate = (Number(fl.sent) * 1000) / Number(fl.ms);
    if (floodRate < 0.9 * RATE) line(`warning: the flooder reached ${Math.round(floodRate)}/s of the ${RATE}/s asked (a busy machine)`);
    if (share < PASS_SHARE) {
      line(`FAIL: ${(share * 100).toFixed(1)}% delivered, below ${PASS_SHARE * 100}%`);
      return 1;
    }
    line('PASS');
    return 0;
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    killChildren();
    rmSync(root, { recursive: true, force: true });
  }
}

const cap = setTimeout(() => {
  process.stderr.write(`flood test exceeded its bound of ${RUN_CAP_MS / 1000} s\n`);
  killChildren();
  process.exit(2);
}, RUN_CAP_MS);
cap.unref();
main().then(
  (code) => {
    clearTimeout(cap);
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`flood test could not run: ${(e as Error).stack ?? String(e)}\n`);
    killChildren();
    process.exitCode = 2;
  },
);
