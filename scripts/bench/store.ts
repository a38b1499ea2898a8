/**
 * The client's persistence, for `npm run bench`:
 *
 *   persistence  the cost of committing one message (the batch the client commits for it: a
 *                history row, a dedupe entry, an outbox row with a 1 KB blob) with 100, 10,000
 *                and 100,000 messages already stored, for the JSON file (rewritten whole and
 *                fsynced on every commit, as the client did before the SQLite store) and for
 *                SQLite (WAL, synchronous=FULL): median microseconds per message
 *   e2e burst    two nodes (peer + client each, the public Node API) on loopback, the sender in
 *                this process and the recipient in a child process (a core each), each with
 *                `stored` messages in its history: one sends a burst of 1,000 messages to the
 *                other; messages/s until all are shown at the recipient and until all are
 *                `delivered` (end-to-end receipt) at the sender
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { FileClientStore, emptyBatch, type ClientStore, type HistoryEntry, type StoreBatch } from '../../src/client/index.js';
import { openStore } from '../../src/store/index.js';
import { Node } from '../../src/api/node.js';

const here = dirname(fileURLToPath(import.meta.url));

export interface PersistencePoint {
  stored: number;
  jsonUsPerMessage: number;
  sqliteUsPerMessage: number;
  jsonSamples: number;
  sqliteSamples: number;
}

export interface BurstResult {
  stored: number;
  messages: number;
  shownPerS: number;
  deliveredPerS: number;
  senderCommits: number;
  /** CPU of the sender's process (node: peer and client) per message, while the burst ran. */
  senderCpuUsPerMessage: number;
  /** Wall time from the first send() to the last receipt. */
  wallMs: number;
}

const hex = (n: number): string => randomBytes(n).toString('hex');
const CONTACT = 'b'.repeat(64);

function entry(i: number, contact: string): HistoryEntry {
  return { id: hex(16), contact, dir: i % 2 ? 'in' : 'out', atMs: 1.7e12 + i, sentAtMs: 1.7e12 + i, text: `message number ${i}, an ordinary line of chat text`, fromPeer: '127.0.0.1:7777', ...(i % 2 ? {} : { state: 'delivered' as const }) };
}

/** The batch the client commits for one message. */
function messageBatch(i: number): StoreBatch {
  const id = hex(16);
  return {
    ...emptyBatch(),
    history: [{ op: 'add', entry: { ...entry(i, CONTACT), id } }],
    dedupe: [[`${CONTACT}:${id}`, { atMs: 1.7e12 + i, sentAtMs: 1.7e12 + i }]],
    outbox: [[id, { id, to: CONTACT, toPeer: '127.0.0.1:7777', kind: 1, createdAtMs: 1.7e12, state: 'held', parts: [{ id, blob: hex(1024), peerStatus: 'held', receipt: false }] }]],
  };
}

/** Fill `store` with `n` history messages, in batches of 10,000. */
export function prefill(store: ClientStore, n: number, contact = CONTACT): void {
  for (let done = 0; done < n; ) {
    const k = Math.min(10_000, n - done);
    const b = emptyBatch();
    for (let i = 0; i < k; i++) b.history.push({ op: 'add', entry: entry(done + i, contact) });
    store.commit(b);
    done += k;
  }
}

/** Median microseconds of commits of one message's batch, `samples` of them or for at most `budgetMs`. */
function timeCommits(store: ClientStore, samples: number, budgetMs: number): { us: number; n: number } {
  const times: number[] = [];
  const until = performance.now() + budgetMs;
  for (let i = 0; i < samples && (times.length < 3 || performance.now() < until); i++) {
    const b = messageBatch(i);
    const t0 = performance.now();
    store.commit(b);
    times.push((performance.now() - t0) * 1000);
  }
  times.sort((a, b) => a - b);
  return { us: Math.round(times[Math.floor(times.length / 2)]!), n: times.length };
}

export function persistenceCost(sizes: readonly number[], samples: number, log: (s: string) => void): PersistencePoint[] {
  const out: PersistencePoint[] = [];
  for (const stored of sizes) {
    const dir = mkdtempSync(join(tmpdir(), 'peerpost-bench-store-'));
    try {
      const json = new FileClientStore(join(dir, 'client-state.json'));
      prefill(json, stored);
      const j = timeCommits(json, samples, 5000);
      const sqlite = openStore(join(dir, 'sqlite'));
      prefill(sqlite, stored);
      const s = timeCommits(sqlite, samples, 5000);
      sqlite.close();
      out.push({ stored, jsonUsPerMessage: j.us, sqliteUsPerMessage: s.us, jsonSamples: j.n, sqliteSamples: s.n });
      log(`  ${stored.toLocaleString('en')} stored: JSON ${j.us} us per message (${j.n} samples), SQLite ${s.us} us (${s.n})`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return out;
}

/** Counts the commits of a store without changing what it does. */
function countCommits(store: { commit(b: StoreBatch): void }): { n: number } {
  const c = { n: 0 };
  const commit = store.commit.bind(store);
  store.commit = (b) => {
    c.n++;
    commit(b);
  };
  return c;
}

function until(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = (): void => {
      if (pred()) return resolve();
      if (Date.now() - t0 > timeoutMs) return reject(new Error(`bench: timed out waiting for ${what}`));
      setTimeout(tick, 2);
    };
    tick();
  });
}

/** The recipient node in a child process (scripts/bench/burst-child.ts). */
function recipient(home: string): { proc: ChildProcess; next<T>(pred: (m: Record<string, unknown>) => boolean): Promise<T> } {
  const proc = fork(join(here, 'burst-child.ts'), [home], { execArgv: ['--import', 'tsx'] });
  const seen: Array<Record<string, unknown>> = [];
  const waiters: Array<{ pred: (m: Record<string, unknown>) => boolean; resolve: (m: Record<string, unknown>) => void }> = [];
  proc.on('message', (m: Record<string, unknown>) => {
    const i = waiters.findIndex((w) => w.pred(m));
    if (i >= 0) waiters.splice(i, 1)[0]!.resolve(m);
    else seen.push(m);
  });
  return {
    proc,
    next: <T>(pred: (m: Record<string, unknown>) => boolean) =>
      new Promise<T>((resolve) => {
        const i = seen.findIndex(pred);
        if (i >= 0) return resolve(seen.splice(i, 1)[0] as T);
        waiters.push({ pred, resolve: resolve as (m: Record<string, unknown>) => void });
      }),
  };
}

export async function burst(stored: number, messages: number, log: (s: string) => void): Promise<BurstResult> {
  const dir = mkdtempSync(join(tmpdir(), 'peerpost-bench-burst-'));
  const homes = [join(dir, 'a'), join(dir, 'b')] as const;
  try {
    // Identities first, then `stored` messages in each history.
    for (const home of homes) await (await Node.start({ host: '127.0.0.1', port: 0, home, summaryIntervalMs: 0 })).close();
    for (const home of homes) {
      const s = openStore(home);
      prefill(s, stored, 'c'.repeat(64));
      s.close();
    }
    const a = await Node.start({ host: '127.0.0.1', port: 0, home: homes[0], summaryIntervalMs: 0 });
    const b = recipient(homes[1]);
    try {
      const { address } = await b.next<{ address: string }>((m) => typeof m.address === 'string');
      await until(() => a.registered, 10_000, 'registration');
      a.addContact(address, 'bob');
      b.proc.send({ contact: a.address });
      await b.next((m) => m.contactReady === true);
      await until(() => a.contacts()[0]?.cert !== undefined, 10_000, 'certificates');
      // The CARD (certificate and capability) the sender sends a new contact is acknowledged
      // before the burst starts, so the burst is 1,000 messages and nothing else.
      const sender = (a as unknown as { machine: { ctx: { s: { cardsAcked?: Record<string, number> } } } }).machine.ctx;
      const bobFp = address.split('@')[0]!;
      const [warm] = a.send('bob', 'warm-up');
      await until(() => a.messageState(warm!)?.state === 'delivered' && sender.s.cardsAcked?.[bobFp] !== undefined, 30_000, 'the CARD exchange');
      const store = (a as unknown as { machine: { ctx: { store: { commit(b: StoreBatch): void } } } }).machine.ctx.store;
      const commits = countCommits(store);
      let delivered = 0;
      const ids = new Set<string>();
      a.on('delivery', (d) => {
        if (d.state === 'delivered' && ids.has(d.id)) delivered++;
      });
      b.proc.send({ expect: messages });
      const shownP = b.next((m) => m.shown === messages).then(() => performance.now());
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < messages; i++) for (const id of a.send('bob', `burst message ${i}`)) ids.add(id);
      await until(() => delivered === messages, 120_000, `${messages} messages delivered`);
      const t1 = performance.now();
      const cpu = process.cpuUsage(cpu0);
      const shownAt = await shownP;
      const r = {
        stored, messages, shownPerS: Math.round(messages / ((shownAt - t0) / 1000)), deliveredPerS: Math.round(messages / ((t1 - t0) / 1000)),
        senderCommits: commits.n, senderCpuUsPerMessage: Math.round((cpu.user + cpu.system) / messages), wallMs: Math.round(t1 - t0),
      };
      log(`  burst of ${messages} with ${stored.toLocaleString('en')} stored: ${r.shownPerS} msg/s shown at the recipient, ${r.deliveredPerS} msg/s delivered (receipts) at the sender; ${r.senderCommits} sender commits, sender CPU ${r.senderCpuUsPerMessage} us per message`);
      return r;
    } finally {
      await a.close();
      await new Promise<void>((resolve) => {
        b.proc.once('exit', () => resolve());
        b.proc.send('exit');
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
