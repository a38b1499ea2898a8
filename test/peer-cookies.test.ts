import t from 'tap';
import { CookieJar, COOKIE_CACHE_MAX } from '../src/peer/cookies.js';

const master = new Uint8Array(32).fill(7);
const EPOCH = 120_000;
const T0 = 1_800_000_000_000;

t.test('a cookie is valid for its address in its epoch and the next, and nowhere else', async (t) => {
  const jar = new CookieJar(master, EPOCH);
  const c = jar.issue(T0, '198.18.0.1:4000');
  for (let round = 0; round < 2; round++) {
    // The second round answers from the cache of checked cookies: the same verdicts.
    t.equal(jar.check(T0, '198.18.0.1:4000', c), jar.epochAt(T0), `own address (round ${round})`);
    t.equal(jar.check(T0 + EPOCH, '198.18.0.1:4000', c), jar.epochAt(T0), `next epoch (round ${round})`);
    t.equal(jar.check(T0 + 2 * EPOCH, '198.18.0.1:4000', c), -1, `two epochs on (round ${round})`);
    t.equal(jar.check(T0 - EPOCH, '198.18.0.1:4000', c), -1, `an epoch earlier (round ${round})`);
    t.equal(jar.check(T0, '198.18.0.1:4001', c), -1, `another port (round ${round})`);
  }
});

t.test('a forged cookie fails even when the address has a cached one', async (t) => {
  const jar = new CookieJar(master, EPOCH);
  const c = jar.issue(T0, '198.18.0.1:4000');
  t.equal(jar.check(T0, '198.18.0.1:4000', c), jar.epochAt(T0));
  for (let i = 4; i < c.length; i++) {
    const f = Uint8Array.from(c);
    f[i]! ^= 1;
    t.equal(jar.check(T0, '198.18.0.1:4000', f), -1, `byte ${i} flipped`);
  }
  t.equal(jar.check(T0, '198.18.0.1:4000', c.subarray(0, 19)), -1, 'short');
  t.equal(jar.check(T0, '198.18.0.1:4000', c), jar.epochAt(T0), 'the real one still passes');
  const other = new CookieJar(new Uint8Array(32).fill(8), EPOCH);
  t.equal(other.check(T0, '198.18.0.1:4000', c), -1, 'another master secret');
});

t.test('a new cookie from an address replaces its cached one', async (t) => {
  const jar = new CookieJar(master, EPOCH);
  const a = jar.issue(T0, '198.18.0.1:4000');
  const b = jar.issue(T0 + EPOCH, '198.18.0.1:4000');
  t.equal(jar.check(T0 + EPOCH, '198.18.0.1:4000', a), jar.epochAt(T0));
  t.equal(jar.check(T0 + EPOCH, '198.18.0.1:4000', b), jar.epochAt(T0 + EPOCH));
  t.equal(jar.check(T0 + EPOCH, '198.18.0.1:4000', a), jar.epochAt(T0), 'the older one is still valid by MAC');
  t.equal(jar.cachedAddresses, 1);
});

t.test('the cache of checked cookies stays at COOKIE_CACHE_MAX addresses', async (t) => {
  const jar = new CookieJar(master, EPOCH);
  const n = COOKIE_CACHE_MAX + 1000;
  let ok = 0;
  for (let i = 0; i < n; i++) {
    const addr = `198.18.${(i >> 8) & 255}.${i & 255}:${4000 + (i >> 16)}`;
    if (jar.check(T0, addr, jar.issue(T0, addr)) >= 0) ok++;
  }
  t.equal(ok, n, 'every cookie passes');
  t.equal(jar.cachedAddresses, COOKIE_CACHE_MAX, 'bounded');
  const first = '198.18.0.0:4000';
  t.equal(jar.check(T0, first, jar.issue(T0, first)), jar.epochAt(T0), 'an address forgotten by the cache is checked by MAC again');
});
