/**
 * The directory keeps its order as joins come (no sort per listing) and limits joins per client
 * and in all. Checked against a full sort after random changes; the cost of renames plus
 * listings is measured and printed.
 */
import t from 'tap';
import { MsgType, WireError } from '../src/protocol/index.js';
import { DIRECTORY_PAGE_ENTRIES_MAX } from '../src/protocol/constants.js';
import { Directory } from '../src/peer/directory.js';
import { bytesKey } from '../src/peer/keys.js';
import { PEER_ADDR, makeWorld, seededRandom } from './helpers/link.js';
import type { RawClient } from './helpers/raw-client.js';

const UNLIMITED = { dirJoinIntervalMs: 1, dirJoinsPerSecondMax: 1_000_000_000 };

/** Every page of `d`, as [name, fingerprint key] pairs. */
function listAll(d: Directory): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let p = 0; ; p++) {
    const page = d.page(p);
    if (!page) return out;
    for (const e of page.entries) out.push([e.name, bytesKey(e.fingerprint)]);
  }
}

function reference(m: Map<string, string>): Array<[string, string]> {
  return [...m].map(([fp, name]) => [name, fp] as [string, string])
    .sort(([na, fa], [nb, fb]) => (na < nb ? -1 : na > nb ? 1 : fa < fb ? -1 : fa > fb ? 1 : 0));
}

t.test('the order stays right through random joins, renames and leaves', async (t) => {
  const rnd = seededRandom(12);
  const d = new Directory({ directoryMax: 500, ...UNLIMITED });
  const truth = new Map<string, string>();
  const fps = Array.from({ length: 600 }, () => bytesKey(rnd(32)));
  // Few distinct names, so that equal names (ordered by fingerprint) are common.
  const names = ['alice', 'bob', 'Bob', 'carol', 'émile', 'zoë', '名前', 'a', 'b b'];
  let now = 0;
  let full = 0;
  for (let i = 0; i < 5000; i++) {
    const b = rnd(3);
    const fp = fps[((b[0]! << 8) | b[1]!) % fps.length]!;
    now += 2;
    if (b[2]! < 40) {
      d.leave(fp);
      truth.delete(fp);
    } else {
      const name = `${names[b[2]! % names.length]}${b[2]! % 3 === 0 ? '' : b[1]! % 7}`;
      const r = d.join(now, fp, name);
      if (r === 'full') full++;
      else {
        t.equal(r, 'ok');
        truth.set(fp, name);
      }
    }
    if (i % 250 === 0) t.same(listAll(d), reference(truth), `order after ${i + 1} changes`);
  }
  t.same(listAll(d), reference(truth), 'order at the end');
  t.equal(d.size, truth.size);
  t.ok(full > 0, 'directoryMax was reached on the way');
});

t.test('cost: 300 renames and 300 listings per second among 10,000 names', async (t) => {
  const rnd = seededRandom(13);
  const n = 10_000;
  const d = new Directory({ directoryMax: n, ...UNLIMITED });
  const fps = Array.from({ length: n }, () => bytesKey(rnd(32)));
  let now = 0;
  for (const [i, fp] of fps.entries()) d.join(now++, fp, `user ${(i * 7919) % n}`);
  const pages = Math.ceil(n / DIRECTORY_PAGE_ENTRIES_MAX);
  const seconds = 10;
  const ops = Array.from({ length: seconds * 300 }, () => {
    const b = rnd(4);
    return { fp: fps[((b[0]! << 8) | b[1]!) % n]!, name: `renamed ${b[2]} ${b[3]}`, page: ((b[2]! << 8) | b[3]!) % pages };
  });
  const results = new Set<string>();
  let listed = 0;
  const t0 = performance.now();
  for (const op of ops) {
    results.add(d.join((now += 3), op.fp, op.name));
    listed += d.page(op.page)!.entries.length;
  }
  const ms = performance.now() - t0;
  t.same([...results], ['ok']);
  // What a listing cost when every join cleared the order: a full sort.
  const entries = listAll(d);
  const s0 = performance.now();
  [...entries].sort(([na, fa], [nb, fb]) => (na < nb ? -1 : na > nb ? 1 : fa < fb ? -1 : fa > fb ? 1 : 0));
  const sortMs = performance.now() - s0;
  const perSecondMs = ms / seconds;
  t.comment(`${seconds * 300} renames + ${seconds * 300} listings (${listed} entries) among ${n} names: ${ms.toFixed(1)} ms, ` +
    `${perSecondMs.toFixed(2)} ms of CPU per second of such traffic (${((ms * 1000) / (seconds * 300)).toFixed(1)} us per rename + listing); ` +
    `one full sort of the ${n} names, which every listing after a join cost before: ${sortMs.toFixed(1)} ms`);
  t.ok(perSecondMs < 100, `under a tenth of a core (${perSecondMs.toFixed(2)} ms per second)`);
  const all = listAll(d);
  t.equal(all.length, n);
  t.ok(all.every((e, i) => i === 0 || all[i - 1]![0] < e[0] || (all[i - 1]![0] === e[0] && all[i - 1]![1] < e[1])), 'sorted');
});

t.test('join limits: one change per client per dirJoinIntervalMs, dirJoinsPerSecondMax in all', async (t) => {
  const d = new Directory({ directoryMax: 100, dirJoinIntervalMs: 10_000, dirJoinsPerSecondMax: 3 }, 0);
  t.equal(d.join(0, 'a', 'alice'), 'ok');
  t.equal(d.join(1, 'a', 'alice 2'), 'rate_limited', 'a rename within the interval');
  t.equal(d.join(1, 'a', 'alice'), 'ok', 'the same name again is no change');
  t.equal(d.join(2, 'b', 'bob'), 'ok');
  t.equal(d.join(3, 'c', 'carol'), 'ok');
  t.equal(d.join(4, 'd', 'dave'), 'rate_limited', 'the global bucket is empty');
  t.equal(d.join(5, 'e', 'bad\u0000'), 'bad_name', 'a bad name is refused first, costing nothing');
  d.leave('a');
  t.equal(d.join(6, 'a', ''), 'ok', 'leaving is never limited');
  t.equal(d.join(400, 'd', 'dave'), 'ok', 'a token back after a third of a second');
  t.equal(d.join(401, 'a', 'alice'), 'rate_limited', 'a join after a leave still waits for the interval');
  t.equal(d.join(10_000, 'a', 'alice'), 'ok', 'after the interval');
  t.same(listAll(d).map(([n]) => n), ['alice', 'bob', 'carol', 'dave']);
  t.throws(() => new Directory({ dirJoinsPerSecondMax: 0 }), /dirJoinsPerSecondMax must be a positive integer/);
});

t.test('through the peer: DIR_JOIN over the limits gets RATE_LIMITED', async (t) => {
  const w = await makeWorld(4, { directory: true, dirJoinIntervalMs: 10_000, dirJoinsPerSecondMax: 2 }, 1_800_000_000_000);
  const cs = w.clients as RawClient[];
  for (const c of cs) c.register(PEER_ADDR);
  w.link.flush();
  cs[0]!.sendSession({ type: MsgType.DIR_JOIN, name: 'one' });
  cs[1]!.sendSession({ type: MsgType.DIR_JOIN, name: 'two' });
  cs[2]!.sendSession({ type: MsgType.DIR_JOIN, name: 'three' });
  cs[0]!.sendSession({ type: MsgType.DIR_JOIN, name: 'one again' });
  w.link.flush();
  t.same(cs.map((c) => c.errors.map((e) => e.code)), [[WireError.RATE_LIMITED], [], [WireError.RATE_LIMITED], []]);
  t.equal(cs[2]!.errors[0]!.detail, 'directory changes too frequent, retry later');
  w.link.advance(10_000);
  for (const c of cs) c.keepalive();
  cs[2]!.sendSession({ type: MsgType.DIR_JOIN, name: 'three' });
  cs[0]!.sendSession({ type: MsgType.DIR_JOIN, name: 'one again' });
  w.link.flush();
  t.same(cs.map((c) => c.errors.length), [1, 0, 1, 0], 'allowed again later');
  cs[3]!.hello(PEER_ADDR);
  w.link.flush();
  cs[3]!.send(PEER_ADDR, { type: MsgType.DIR_LIST, cookie: cs[3]!.cookies.get('10.0.0.1:7777')!, page: 0 });
  w.link.flush();
  t.same(cs[3]!.lastOf(MsgType.DIR_PAGE)!.entries.map((e) => e.name), ['one again', 'three', 'two']);
});
