import t from 'tap';
import { KEYS_BYTES, Registry, type RegistryEntry } from '../src/peer/registry.js';

const TTL = 120_000;
const sid = (i: number): string => String.fromCharCode(0x80 + i).repeat(8);
const fp = (i: number): string => String.fromCharCode(i).repeat(32);
const secrets = (i: number): Uint8Array => new Uint8Array(KEYS_BYTES).fill(i);

t.test('touch costs no reordering; sweep removes the expired and requeues the seen', async (t) => {
  const removed: string[] = [];
  const r = new Registry(TTL, 0, (e) => removed.push(e.fp));
  const a = r.put(0, fp(1), 'cert', '10.0.0.1:1', sid(1), secrets(1)).entry;
  r.put(10, fp(2), 'cert', '10.0.0.2:1', sid(2), secrets(2));
  r.touch(60_000, a);
  t.equal(r.firstExpiry(), TTL, 'the front is a, queued at 0: the earliest possible expiry');
  const next = r.sweep(TTL + 10, 100);
  t.same(removed, [fp(2)], 'the one not seen since it registered is gone');
  t.equal(r.size, 1);
  t.equal(next, 60_000 + TTL, 'a was moved to the end with its last sighting');
  t.equal(r.atSession(TTL + 10, sid(1)), a, 'still found by its session');
  t.equal(r.atSession(TTL + 10, sid(2)), undefined);
  t.equal(r.sweep(60_000 + TTL, 100), undefined, 'a expires a TTL after it was last seen');
  t.same(removed, [fp(2), fp(1)]);
});

t.test('a sweep stops at its bound and says to come back now', async (t) => {
  const r = new Registry(TTL, 0, () => {});
  for (let i = 1; i <= 5; i++) r.put(0, fp(i), 'c', `10.0.0.${i}:1`, sid(i), secrets(i));
  t.equal(r.sweep(TTL, 2), TTL, 'two removed, more are due');
  t.equal(r.size, 3);
  t.equal(r.sweep(TTL, 10), undefined);
  t.equal(r.size, 0);
});

t.test('secrets and session ids live in slots that are zeroed and reused', async (t) => {
  const r = new Registry(TTL, 0, () => {});
  const a = r.put(0, fp(1), 'c', '10.0.0.1:1', sid(1), secrets(7)).entry;
  t.same([...r.c2p(a)], new Array(32).fill(7));
  t.same([...r.p2c(a)], new Array(32).fill(7));
  t.same([...r.deliveryKey(a)], new Array(32).fill(7));
  t.same([...r.nonce(a)], new Array(16).fill(7));
  t.equal(r.sidBytes(a).toString('latin1'), sid(1));
  const slot = a.slot;
  const view = r.c2p(a);
  r.remove(a);
  t.same([...view], new Array(32).fill(0), 'a removed session leaves no secret behind');
  const b: RegistryEntry = r.put(1, fp(2), 'c', '10.0.0.2:1', sid(2), secrets(9)).entry;
  t.equal(b.slot, slot, 'the freed slot is used again');
  t.same([...r.c2p(b)], new Array(32).fill(9));
  t.throws(() => r.put(1, fp(3), 'c', '10.0.0.3:1', sid(3), new Uint8Array(5)), /112 bytes of secrets/);
});

t.test('a new session of a client forgets the old id and resets the replay window', async (t) => {
  const r = new Registry(TTL, 0, () => {});
  const a = r.put(0, fp(1), 'c', '10.0.0.1:1', sid(1), secrets(1)).entry;
  a.rxTop = 40;
  a.tx = 9;
  const again = r.put(5, fp(1), 'c', '10.0.0.9:1', sid(2), secrets(2));
  t.equal(again.entry, a);
  t.equal(again.previousAddr, '10.0.0.1:1');
  t.equal(r.atSession(5, sid(1)), undefined, 'the old session id is gone');
  t.equal(r.atSession(5, sid(2)), a);
  t.equal(a.rxTop, -1);
  t.equal(a.tx, 0);
  t.equal(r.sidTaken(sid(2), fp(1)), false);
  t.equal(r.sidTaken(sid(2), fp(3)), true);
});
