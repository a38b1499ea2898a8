/**
 * Flood test, the storage filler: throwaway identities (public Client API, each on its own
 * loopback address in its own /24) register at the peer and are abandoned (closed without a
 * word: they stay registered and never acknowledge); senders in `--senders` other /24s then send
 * each of them `--per-identity` messages of about 1 KB, as fast as the client lets them. What
 * the peer holds for them is bounded by its quotas (strangers per recipient, per source range).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '../../src/api/index.js';
import { arg, childInit, toParent } from './child.js';

const peer = arg('peer', '');
const identitiesN = Number(arg('identities', '48'));
const sendersN = Number(arg('senders', '4'));
const perIdentity = Number(arg('per-identity', '8'));
const REGISTER_WAIT_MS = 15_000;
/** Text per message: sealed, it fills a 1,100-byte blob. */
const TEXT_CHARS = 900;
const ROUND_MS = 1000;

const root = mkdtempSync(join(tmpdir(), 'pp-flood-filler-'));
const clients: Client[] = [];
const counts = { registered: 0, abandoned: 0, sent: 0 };

/** A Client on 127.<a>.<b>.1 with its own home; resolves once registered (or after the wait). */
async function client(name: string, a: number, b: number): Promise<Client> {
  const c = await Client.start({ peer, home: join(root, name), host: `127.${a}.${b}.1` });
  clients.push(c);
  await new Promise<void>((resolve) => {
    if (c.registered) return resolve();
    const timer = setTimeout(resolve, REGISTER_WAIT_MS);
    c.once('registered', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  if (c.registered) counts.registered++;
  return c;
}

const throwaways: string[] = [];
let senders: Client[] = [];

/** Register the throwaways and abandon them, then register the senders. */
async function setup(): Promise<void> {
  await Promise.all(Array.from({ length: identitiesN }, async (_, i) => {
    const c = await client(`t${i}`, 20 + (i >> 8), i & 255);
    if (!c.registered) return;
    throwaways.push(c.fingerprint);
    await c.close();
    counts.abandoned++;
  }));
  for (let i = 0; i < sendersN; i++) senders.push(await client(`s${i}`, 30, i));
}

/** Each sender sends one message to every throwaway each ROUND_MS, perIdentity rounds in all. */
function run(): void {
  const text = 'x'.repeat(TEXT_CHARS);
  for (const s of senders) throwaways.forEach((fp, i) => s.addContact(`${fp}@${peer}`, `t${i}`));
  let round = 0;
  const timer = setInterval(() => {
    if (round++ >= perIdentity) return clearInterval(timer);
    for (const s of senders) {
      for (let i = 0; i < throwaways.length; i++) {
        s.send(`t${i}`, text);
        counts.sent++;
      }
    }
  }, ROUND_MS);
}

childInit(Number(arg('lifetime-ms', '120000')), async (m) => {
  if (m.type === 'start') return run();
  const outbox = { queued: 0, held: 0, delivered: 0, failed: 0 };
  for (const c of senders) for (const m of c.outbox()) outbox[m.state]++;
  const drops: Record<string, number> = {};
  for (const c of senders) for (const [k, v] of Object.entries(c.stats().drops)) drops[k] = (drops[k] ?? 0) + v;
  toParent({ type: 'stats', ...counts, outbox, drops });
  await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  rmSync(root, { recursive: true, force: true });
  process.exit(0);
});
await setup();
toParent({ type: 'ready', ...counts });
