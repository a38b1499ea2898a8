/**
 * The client's persistence, for `npm run bench`:
 *
 *   persistence  the cost of committing one message (the batch the client commits for it: a
 *                history row, a dedupe entry, an outbox row with a 1 KB blob) with 100, 10,000
 *                and 100,000 messages already stored, for the JSON file (rewritten whole and
 *                fsynced on every commit, as the client did before the SQLite store) and for
 *                SQLite (WAL, synchronous=FULL): median microseconds per message
 *   e2e burst    two nodes (peer + client each, the public Node API) on loopback in this process,
 *                each with `stored` messages in its history: one sends a burst of 1,000 messages
 *                to the other; messages/s until all are shown at the recipient and until all are
 *                `delivered` (end-to-end receipt) at the sender
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { FileClientStore, emptyBatch, type ClientStore, type HistoryEntry, type StoreBatch } from '../../src/client/index.js';
import { openStore } from '../../src/store/index.js';
import { Node } from '../../src/api/node.js';

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
    dedupe: [[`${CONTACT}:${id}`, 1.7e12 + i]],
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

export async function burst(stored: number, messages: number, log: (s: string) => void): Promise<BurstResult> {
  const dir = mkdtempSync(join(tmpdir(), 'peerpost-bench-burst-'));
  const homes = [join(dir, 'a'), join(dir, 'b')];
  try {
    // Identities first, then `stored` messages in each history.
    for (const home of homes) await (await Node.start({ host: '127.0.0.1', port: 0, home, summaryIntervalMs: 0 })).close();
    for (const home of homes) {
      const s = openStore(home);
      prefill(s, stored, 'c'.repeat(64));
      s.close();
    }
    const a = await Node.start({ host: '127.0.0.1', port: 0, home: homes[0], summaryIntervalMs: 0 });
    const b = await Node.start({ host: '127.0.0.1', port: 0, home: homes[1], summaryIntervalMs: 0 });
    try {
      await until(() => a.registered && b.registered, 10_000, 'registration');
      a.addContact(b.address, 'bob');
      b.addContact(a.address, 'alice');
      await until(() => a.contacts()[0]?.cert !== undefined && b.contacts()[0]?.cert !== undefined, 10_000, 'certificates');
      const store = (a as unknown as { machine: { ctx: { store: { commit(b: StoreBatch): void } } } }).machine.ctx.store;
      const commits = countCommits(store);
      let shown = 0;
      let delivered = 0;
      let shownAt = 0;
      const ids = new Set<string>();
      b.on('message', () => {
        if (++shown === messages) shownAt = performance.now();
      });
      a.on('delivery', (d) => {
        if (d.state === 'delivered' && ids.has(d.id)) delivered++;
      });
      const t0 = performance.now();
      for (let i = 0; i < messages; i++) for (const id of a.send('bob', `burst message ${i}`)) ids.add(id);
      await until(() => delivered === messages && shown >= messages, 120_000, `${messages} messages delivered`);
      const t1 = performance.now();
      const r = {
        stored, messages, shownPerS: Math.round(messages / ((shownAt - t0) / 1000)), deliveredPerS: Math.round(messages / ((t1 - t0) / 1000)),
        senderCommits: commits.n,
      };
      log(`  burst of ${messages} with ${stored.toLocaleString('en')} stored: ${r.shownPerS} msg/s shown at the recipient, ${r.deliveredPerS} msg/s delivered (receipts) at the sender; ${r.senderCommits} sender commits`);
      return r;
    } finally {
      await a.close();
      await b.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
