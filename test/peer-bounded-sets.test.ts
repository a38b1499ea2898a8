/**
 * The peer's bounded sets on their own: the recently-delivered map (FIFO at its bound) and the
 * replay guard (64-bit tags per cookie epoch, 'full' at its bound, old epochs dropped).
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { FifoMap, ReplayGuard } from '../src/peer/bounded-sets.js';

const SECRET = new Uint8Array(32).fill(5);
const pair = (i: number): string => `fingerprint-${i}|nonce-${i}`;

t.test('FifoMap forgets the oldest key at its bound; setting a present key keeps its place', async (t) => {
  const m = new FifoMap<string>(3);
  for (const k of ['a', 'b', 'c']) m.set(k, k.toUpperCase());
  m.set('a', 'A2');
  t.equal(m.size, 3);
  m.set('d', 'D');
  t.equal(m.get('a'), undefined, 'a was the oldest, replaced or not');
  t.same(['b', 'c', 'd'].map((k) => m.get(k)), ['B', 'C', 'D']);
  m.set('e', 'E');
  t.equal(m.get('b'), undefined);
  t.equal(m.size, 3);
  t.throws(() => new FifoMap(0), TypeError);
});

t.test('ReplayGuard: a pair is refused the second time, in the same cookie epoch', async (t) => {
  const g = new ReplayGuard(10, SECRET);
  t.equal(g.use(100, 100, pair(1)), 'ok');
  t.equal(g.use(100, 100, pair(1)), 'replay');
  t.equal(g.use(101, 100, pair(1)), 'replay', 'still in the next epoch');
  t.equal(g.use(101, 101, pair(1)), 'ok', 'a pair in another cookie epoch is another proof');
  t.equal(g.size, 2);
  t.throws(() => new ReplayGuard(0, SECRET), TypeError);
});

t.test('ReplayGuard at replayMax: full, and free again once the window has moved on', async (t) => {
  const g = new ReplayGuard(4, SECRET);
  for (let i = 0; i < 4; i++) t.equal(g.use(100, 100, pair(i)), 'ok');
  t.equal(g.use(100, 100, pair(99)), 'full', 'a new pair at the bound');
  t.equal(g.use(100, 100, pair(2)), 'replay', 'a used pair is still a replay at the bound');
  t.equal(g.use(101, 100, pair(99)), 'full', 'epoch 100 still counts in epoch 101');
  t.equal(g.use(102, 101, pair(99)), 'ok', 'epoch 100 dropped in epoch 102');
  t.equal(g.size, 1);
});

t.test('ReplayGuard keeps 100,000 pairs across table growth, each refused again, 16 to 32 bytes a pair', async (t) => {
  const g = new ReplayGuard(200_000, randomBytes(32));
  const n = 100_000;
  let ok = 0;
  for (let i = 0; i < n; i++) if (g.use(7, 7, pair(i)) === 'ok') ok++;
  t.equal(ok, n, 'every new pair accepted');
  let replays = 0;
  for (let i = 0; i < n; i++) if (g.use(7, 7, pair(i)) === 'replay') replays++;
  t.equal(replays, n, 'every pair refused the second time');
  const perPair = g.tableBytes / n;
  t.ok(perPair >= 16 && perPair <= 32, `${perPair.toFixed(1)} bytes of table per pair`);
});
