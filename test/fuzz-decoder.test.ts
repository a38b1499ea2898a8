/**
 * Decoder fuzz: well over 100,000 random and mutated datagrams from a seeded PRNG. For every one,
 * decode() must not throw, must return {ok: true, msg} or {ok: false, reason} with a known
 * DropReason, must not take 10 ms, and an accepted datagram must re-encode to the same bytes.
 * Whatever the hand-written reader (decodeFlat) accepts, the strict decoder must accept with an
 * equal message, and the same bytes in a Buffer (as dgram delivers them) must decode the same.
 * The seed is printed with every failure; PEERPOST_FUZZ_SEED=<n> replays a run.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { decode, decodeFlat, decodeStrict, encode, MsgType, DATAGRAM_MAX_BYTES, type DropReason, type Message } from '../src/protocol/index.js';

const SEED = Number(process.env.PEERPOST_FUZZ_SEED ?? 0x9e3779b9) >>> 0;
const DECODE_MAX_MS = 10;
/** Most once-slow inputs kept for timing again; more than this many pauses fails the run. */
const SLOW_KEPT_MAX = 200;

const KNOWN_REASONS: ReadonlySet<DropReason> = new Set<DropReason>([
  'empty', 'too_large', 'truncated', 'bad_version', 'unknown_type', 'trailing_bytes', 'bad_length', 'bad_padding',
  'bad_schema', 'bad_cbor', 'cbor_indefinite', 'cbor_reserved', 'cbor_int_range', 'cbor_not_shortest', 'cbor_too_deep',
  'cbor_too_many_items', 'cbor_bad_utf8', 'cbor_bad_simple', 'cbor_tag', 'cbor_map', 'cbor_negative',
]);

/** mulberry32: a small seeded PRNG, good enough to pick bytes and positions. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return (x ^ (x >>> 14)) >>> 0;
  };
}
const next = prng(SEED);
const int = (n: number): number => next() % n;
const randomBytes = (n: number): Uint8Array => {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = next() & 0xff;
  return b;
};
const pick = <T>(a: readonly T[]): T => a[int(a.length)]!;
const cat = (...parts: ArrayLike<number>[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let i = 0;
  for (const p of parts) {
    out.set(p, i);
    i += p.length;
  }
  return out;
};

// ---------------------------------------------------------------------------------------------
// seeds: the golden vectors plus a few messages at their bounds

const vectors = JSON.parse(readFileSync(new URL('./vectors/envelope.json', import.meta.url), 'utf8')) as Array<{ hex: string }>;
const seeds: Uint8Array[] = vectors.map((v) => new Uint8Array(Buffer.from(v.hex, 'hex')));
const at = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);
const extra: Message[] = [
  { type: MsgType.ACK, ids: Array.from({ length: 32 }, (_, i) => at(16, i)) },
  { type: MsgType.DIR_PAGE, page: 3, pages: 700, entries: Array.from({ length: 16 }, (_, i) => ({ fingerprint: at(32, i), name: 'n'.repeat(32) })) },
  { type: MsgType.ERROR, code: 65535, ref: at(32, 7), detail: 'é'.repeat(48) },
  { type: MsgType.REGISTER, cert: at(800, 0x30), nonce: at(16, 1) },
  { type: MsgType.REGISTER, cert: at(100, 0x30), nonce: at(16, 1), padTo: 0 },
  { type: MsgType.HELLO, nonce: at(16, 9), padTo: 0 },
  // the hand-read datagrams at the edges of their CBOR heads
  ...[1, 23, 24, 255, 256, 1100].flatMap((n): Message[] => [
    { type: MsgType.DELIVER, cookie: at(20, 1), to: at(32, 2), id: at(16, 3), blob: at(n, 4) },
    { type: MsgType.DELIVER, cookie: at(20, 1), to: at(32, 2), id: at(16, 3), cap: at(16, 8), blob: at(Math.min(n, 1083), 4) },
    { type: MsgType.PUSH, id: at(16, 3), blob: at(n, 5) },
    { type: MsgType.SESSION, sessionId: at(8, 1), counter: n, inner: { type: MsgType.PUSH, id: at(16, 3), blob: at(n, 5) }, tag: at(16, 9) },
  ]),
  { type: MsgType.SESSION, sessionId: at(8, 1), counter: 2 ** 53 - 1, inner: { type: MsgType.KEEPALIVE, answer: true }, tag: at(16, 9) },
  ...[1, 2, 23, 24, 32].map((n): Message => ({ type: MsgType.ACK, ids: Array.from({ length: n }, (_, i) => at(16, i)) })),
  { type: MsgType.RESULT, id: at(16, 6), status: 200 },
  { type: MsgType.RESULT, id: at(16, 6), status: 300 },
];
for (const m of extra) seeds.push(encode(m));

// ---------------------------------------------------------------------------------------------
// generators

/** A CBOR head of major type `major` with argument `arg` in `size` argument bytes (0 = in the initial byte). */
function head(major: number, arg: number, size: 0 | 1 | 2 | 4 | 8): Uint8Array {
  if (size === 0) return Uint8Array.of((major << 5) | Math.min(arg, 23));
  const info = size === 1 ? 24 : size === 2 ? 25 : size === 4 ? 26 : 27;
  const b = new Uint8Array(1 + size);
  b[0] = (major << 5) | info;
  let x = BigInt(arg);
  for (let i = size; i >= 1; i--) {
    b[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return b;
}

/** A random CBOR-ish item: mostly of the subset, sometimes not (maps, tags, floats, negatives, long heads). */
function randomItem(depth: number): Uint8Array {
  const r = int(100);
  const size = pick([0, 0, 0, 1, 1, 2, 4, 8] as const);
  if (r < 25) return head(0, int(size === 0 ? 24 : 70000), size);
  if (r < 55) {
    const n = pick([0, 1, 16, 20, 32, 64, 100, 250, int(300)]);
    return cat(head(2, n, n < 24 ? 0 : n < 256 ? 1 : 2), randomBytes(n));
  }
  if (r < 65) {
    const n = int(40);
    const s = pick([() => randomBytes(n), () => new TextEncoder().encode('ab€😀'.repeat(n >> 3)).subarray(0, n)])();
    return cat(head(3, s.length, s.length < 24 ? 0 : 1), s);
  }
  if (r < 85 && depth < 7) {
    const n = int(6);
    const items = Array.from({ length: n }, () => randomItem(depth + 1));
    return cat(head(4, n, 0), ...items);
  }
  return pick([
    () => Uint8Array.of(0xf4 + int(3)),
    () => Uint8Array.of(0xe0 + int(32)),
    () => cat(Uint8Array.of(0xf9 + int(3)), randomBytes(8)),
    () => cat(Uint8Array.of(0xa0 + int(4)), randomBytes(4)),
    () => cat(Uint8Array.of(0xc0 + int(24)), randomItem(depth + 1)),
    () => cat(head(1, int(1000), pick([0, 1, 2] as const))),
    () => cat(Uint8Array.of(0x9f), randomItem(depth + 1), Uint8Array.of(0xff)),
    () => Uint8Array.of(0x1c + int(4)),
  ])();
}

/** Equal messages: same fields, byte strings with equal bytes (Buffer or plain Uint8Array). */
function sameMessage(a: Message, b: Message): boolean {
  const norm = (m: Message): string => JSON.stringify(m, (_k, v: unknown) => (v instanceof Uint8Array ? `bytes:${Buffer.from(v).toString('hex')}` : v));
  return Object.getPrototypeOf(a) === Object.getPrototypeOf(b) && norm(a) === norm(b);
}

const cborType = (): number => 6 + int(14);
const envelope = (type: number, payload: Uint8Array): Uint8Array => cat([2, type], payload);

function mutate(src: Uint8Array): Uint8Array {
  const b = Uint8Array.from(src);
  switch (int(6)) {
    case 0: {
      const flips = 1 + int(4);
      for (let k = 0; k < flips && b.length; k++) b[int(b.length)]! ^= 1 << int(8);
      return b;
    }
    case 1: {
      const i = int(b.length + 1);
      return cat(b.subarray(0, i), randomBytes(1 + int(3)), b.subarray(i));
    }
    case 2: {
      const i = int(b.length + 1);
      return cat(b.subarray(0, i), b.subarray(i + 1 + int(3)));
    }
    case 3:
      return b.subarray(0, int(b.length + 1));
    case 4: {
      // a map, tag, float or break byte somewhere in the payload
      const i = 2 + int(Math.max(1, b.length - 1));
      return cat(b.subarray(0, i), [pick([0xa0 + int(32), 0xc0 + int(32), 0xf9 + int(3), 0xff, 0xf7, 0x20 + int(32)])], b.subarray(i));
    }
    default: {
      // overwrite a byte with a CBOR head byte that announces a longer argument
      if (b.length > 2) b[2 + int(b.length - 2)] = pick([0x18, 0x19, 0x1a, 0x1b, 0x58, 0x59, 0x5a, 0x5b, 0x78, 0x79, 0x98, 0x99, 0x9a, 0x9b]);
      return b;
    }
  }
}

function* datagrams(): Generator<[string, Uint8Array]> {
  // random bytes of every length 0..1300, raw and behind a valid version byte and type
  for (let n = 0; n <= 1300; n++) {
    for (let k = 0; k < 4; k++) {
      const b = randomBytes(n);
      if (k >= 2 && n >= 2) {
        b[0] = 2;
        b[1] = 1 + int(20);
      }
      yield ['random', b];
    }
  }
  // every truncation of every seed
  for (const s of seeds) for (let n = 0; n < s.length; n++) yield ['truncation', s.subarray(0, n)];
  // mutants of seeds, and mutants of mutants
  for (let k = 0; k < 80_000; k++) {
    let b = mutate(pick(seeds));
    if (int(4) === 0) b = mutate(b);
    yield ['mutation', b];
  }
  // REGISTER with lying certificate lengths, and HELLO with odd paddings
  for (let k = 0; k < 6_000; k++) {
    const len = pick([int(0x10000), 99, 100, 800, 801, 0xffff, int(1300)]);
    const body = randomBytes(int(1199));
    if (int(2)) body.fill(0, Math.min(body.length, len + 18));
    yield ['register_length', cat([2, 2, len >> 8, len & 0xff], body).subarray(0, DATAGRAM_MAX_BYTES)];
    yield ['hello_padding', cat([2, 5], randomBytes(16), new Uint8Array(int(1183)), int(3) ? [] : [int(256)])];
  }
  // CBOR strings and arrays whose lengths lie, and huge 8-byte counts
  for (let k = 0; k < 8_000; k++) {
    const major = pick([2, 3, 4]);
    const size = pick([0, 1, 2, 4, 8] as const);
    const arg = size === 8 ? pick([2 ** 32, 2 ** 53 - 1, 2 ** 53, 2 ** 64 - 1]) : int(size === 0 ? 24 : 2 ** (8 * size));
    const lying = head(major, arg, size);
    const tail = randomBytes(int(200));
    yield ['lying_length', envelope(cborType(), int(2) ? lying : cat([0x82], lying, tail))];
    yield ['huge_count', envelope(cborType(), cat([pick([0x9b, 0x5b, 0x7b, 0x1b])], randomBytes(8), tail))];
  }
  // deep nesting: 0x81 (or 0x9f, or 0x82) repeated, then something
  for (let depth = 1; depth <= 1198; depth++) {
    for (const opener of [0x81, 0x9f, 0x82]) {
      const b = new Uint8Array(depth).fill(opener);
      yield ['deep', envelope(cborType(), cat(b, randomItem(0)).subarray(0, DATAGRAM_MAX_BYTES - 2))];
    }
  }
  // wide arrays: item counts around CBOR_ITEMS_MAX, flat or split over nested arrays
  for (let k = 0; k < 4_000; k++) {
    const n = 200 + int(120);
    const filler = (m: number): Uint8Array => new Uint8Array(m).fill(pick([0x00, 0x17, 0xf6, 0x40, 0x60]));
    const flat = cat(head(4, n, n < 256 ? 1 : 2), filler(n));
    const half = n >> 1;
    const split = cat([0x82], head(4, half, 1), filler(half), head(4, n - half, 1), filler(n - half));
    yield ['wide', envelope(cborType(), int(2) ? flat : split)];
  }
  // random CBOR trees in every CBOR payload type, often wrapped in a top-level array
  for (let k = 0; k < 50_000; k++) {
    const n = 1 + int(5);
    const item = int(4) ? cat(head(4, n, 0), ...Array.from({ length: n }, () => randomItem(1))) : randomItem(0);
    yield ['cbor_tree', envelope(cborType(), item.subarray(0, DATAGRAM_MAX_BYTES - 2))];
  }
}

// ---------------------------------------------------------------------------------------------
// the run

t.test(`decode survives random and mutated datagrams (seed ${SEED})`, async (t) => {
  // Warm up the code paths first so that compilation is not timed as decoding.
  for (let k = 0; k < 200; k++) for (const s of seeds) decode(mutate(s));
  const started = performance.now();
  let count = 0;
  let okCount = 0;
  let flatCount = 0;
  let totalMs = 0;
  let maxMs = 0;
  let maxInput: Uint8Array = new Uint8Array(0);
  /** Inputs whose decode took over DECODE_MAX_MS once, to time again after the run. */
  const slow: Uint8Array[] = [];
  let slowCount = 0;
  const failures: string[] = [];
  const reasons = new Map<string, number>();
  const byKind = new Map<string, number>();
  const fail = (what: string, kind: string, b: Uint8Array): void => {
    if (failures.length < 5) failures.push(`seed ${SEED}, ${kind}: ${what}: ${Buffer.from(b).toString('hex').slice(0, 400)}`);
  };

  for (const [kind, b] of datagrams()) {
    count++;
    byKind.set(kind, (byKind.get(kind) ?? 0) + 1);
    let r: ReturnType<typeof decode>;
    const t0 = performance.now();
    try {
      r = decode(b);
    } catch (e) {
      fail(`decode threw ${String(e)}`, kind, b);
      continue;
    }
    const ms = performance.now() - t0;
    totalMs += ms;
    if (ms > maxMs) {
      maxMs = ms;
      maxInput = b;
    }
    if (ms > DECODE_MAX_MS) {
      slowCount++;
      if (slow.length < SLOW_KEPT_MAX) slow.push(b);
    }
    const asBuffer = decode(Buffer.from(b)); // what dgram hands the UDP driver
    const sameAsBuffer = asBuffer.ok && r.ok ? sameMessage(asBuffer.msg, r.msg) : !asBuffer.ok && !r.ok && asBuffer.reason === r.reason;
    if (!sameAsBuffer) fail('a Buffer decodes otherwise than a Uint8Array', kind, b);
    const flat = decodeFlat(b);
    if (flat) {
      flatCount++;
      const strict = decodeStrict(b);
      if (!flat.ok || !strict.ok || !sameMessage(flat.msg, strict.msg)) fail('decodeFlat and decodeStrict differ', kind, b);
    }
    if (!r || typeof r !== 'object' || typeof r.ok !== 'boolean') {
      fail('result is not {ok}', kind, b);
      continue;
    }
    if (!r.ok) {
      if (!KNOWN_REASONS.has(r.reason)) fail(`unknown reason ${String(r.reason)}`, kind, b);
      reasons.set(r.reason, (reasons.get(r.reason) ?? 0) + 1);
      continue;
    }
    okCount++;
    try {
      const m = r.msg;
      const again = m.type === MsgType.REGISTER || m.type === MsgType.HELLO ? encode({ ...m, padTo: b.length }) : encode(m);
      if (Buffer.compare(Buffer.from(again), Buffer.from(b)) !== 0) fail('re-encodes to other bytes', kind, b);
    } catch (e) {
      fail(`encode of a decoded message threw ${String(e)}`, kind, b);
    }
  }

  // A slow single decode may be a garbage-collection pause or another process taking the core:
  // time every such input again, best of 5. A really slow input stays slow.
  let worstRetimedMs = 0;
  for (const b of slow) {
    let best = Infinity;
    for (let k = 0; k < 5; k++) {
      const t0 = performance.now();
      decode(b);
      best = Math.min(best, performance.now() - t0);
    }
    if (best > worstRetimedMs) {
      worstRetimedMs = best;
      maxInput = b;
    }
  }
  const wallMs = performance.now() - started;
  t.comment(`seed ${SEED}: ${count} datagrams, ${okCount} accepted, decode total ${totalMs.toFixed(0)} ms, ` +
    `mean ${((totalMs / count) * 1000).toFixed(1)} us, max ${maxMs.toFixed(3)} ms, ` +
    `${slowCount} over ${DECODE_MAX_MS} ms (worst of those timed again: ${worstRetimedMs.toFixed(3)} ms), wall ${wallMs.toFixed(0)} ms`);
  t.comment(`by kind: ${JSON.stringify(Object.fromEntries(byKind))}`);
  t.comment(`reasons: ${JSON.stringify(Object.fromEntries([...reasons].sort((a, b) => b[1] - a[1])))}`);

  t.same(failures, [], `seed ${SEED}: no throw, only known reasons, accepted datagrams re-encode exactly`);
  t.ok(count >= 100_000, `at least 100,000 datagrams (${count})`);
  t.ok(flatCount >= 5_000, `at least 5,000 of them read by hand and checked against the strict decoder (${flatCount})`);
  t.ok(slowCount <= SLOW_KEPT_MAX && worstRetimedMs <= DECODE_MAX_MS,
    `seed ${SEED}: no decode over ${DECODE_MAX_MS} ms (${slowCount} timed over once; worst again ${worstRetimedMs.toFixed(3)} ms` +
    `${slow.length ? `, input ${Buffer.from(maxInput).toString('hex').slice(0, 80)}` : ''})`);
  t.ok(okCount > 100, `some mutants are accepted, so re-encoding is exercised (${okCount})`);
  for (const reason of KNOWN_REASONS) {
    if (reason === 'bad_cbor') continue;
    t.ok(reasons.has(reason), `seed ${SEED}: the fuzz reaches ${reason}`);
  }
});
