/**
 * Property tests of the Root envelope codec (fast-check): for every payload type an arbitrary
 * valid message round trips (decode(encode(m)) deep-equals m), and every valid datagram has one
 * encoding only (encode(decode(b)) === b), including datagrams found by mutating valid ones.
 */
import t from 'tap';
import fc from 'fast-check';
import {
  ACK_IDS_MAX, BLOB_MAX_BYTES, CERT_MAX_BYTES, CERT_MIN_BYTES, COOKIE_BYTES, DATAGRAM_MAX_BYTES, DIRECTORY_NAME_MAX_BYTES,
  DIRECTORY_PAGE_ENTRIES_MAX, ERROR_DETAIL_MAX_BYTES, FINGERPRINT_BYTES, MESSAGE_ID_BYTES, MsgType, NONCE_BYTES,
  SIGNATURE_BYTES, decode, encode, type Message,
} from '../src/protocol/index.js';

const SEED = Number(process.env.PEERPOST_PROP_SEED ?? 0x5eed0001);
const RUNS = 300;

const utf8Length = (s: string): number => Buffer.byteLength(s, 'utf8');
const bytes = (min: number, max = min): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: min, maxLength: max });
const text = (min: number, max: number): fc.Arbitrary<string> =>
  fc.string({ unit: 'binary', maxLength: max }).filter((s) => utf8Length(s) >= min && utf8Length(s) <= max);
const u16 = fc.integer({ min: 0, max: 0xffff });
const cert = bytes(CERT_MIN_BYTES, CERT_MAX_BYTES);
const cookie = bytes(COOKIE_BYTES);
const id = bytes(MESSAGE_ID_BYTES);
const fp = bytes(FINGERPRINT_BYTES);

const arbitraries: Record<keyof typeof MsgType, fc.Arbitrary<Message>> = {
  OK: fc.record({ type: fc.constant(MsgType.OK), ref: fc.oneof(bytes(0), bytes(8), bytes(16)) }),
  KEEPALIVE: fc.record({ type: fc.constant(MsgType.KEEPALIVE), answer: fc.boolean() }),
  REGISTER_AGAIN: fc.record({ type: fc.constant(MsgType.REGISTER_AGAIN), sessionId: bytes(8) }),
  POLL: fc.constant({ type: MsgType.POLL }),
  REGISTER: fc.record({ type: fc.constant(MsgType.REGISTER), cert, nonce: bytes(NONCE_BYTES) }),
  HELLO: fc.record({ type: fc.constant(MsgType.HELLO), nonce: bytes(NONCE_BYTES) }),
  CHALLENGE: fc.record({
    type: fc.constant(MsgType.CHALLENGE), nonce: bytes(NONCE_BYTES), cookie, peerCert: cert, peerKey: bytes(32), keySig: bytes(SIGNATURE_BYTES),
  }),
  REGISTER_PROOF: fc.record({
    type: fc.constant(MsgType.REGISTER_PROOF), cert, nonce: bytes(NONCE_BYTES), cookie, peerKey: bytes(32), clientKey: bytes(32),
    wrappedKey: bytes(48), sig: bytes(SIGNATURE_BYTES),
  }),
  DELIVER: fc.oneof(
    fc.record({ type: fc.constant(MsgType.DELIVER), cookie, to: fp, id, blob: bytes(1, BLOB_MAX_BYTES) }),
    fc.record({ type: fc.constant(MsgType.DELIVER), cookie, to: fp, id, cap: bytes(16), blob: bytes(1, BLOB_MAX_BYTES - 17) }),
  ),
  COOKIE: fc.record({ type: fc.constant(MsgType.COOKIE), nonce: bytes(NONCE_BYTES), cookie }),
  SESSION: fc.record({
    type: fc.constant(MsgType.SESSION),
    sessionId: bytes(8),
    counter: fc.oneof(fc.nat(), fc.constant(Number.MAX_SAFE_INTEGER)),
    inner: fc.oneof(
      fc.record({ type: fc.constant(MsgType.KEEPALIVE), answer: fc.boolean() }),
      fc.constant({ type: MsgType.POLL }),
      fc.record({ type: fc.constant(MsgType.OK), ref: fc.oneof(bytes(0), bytes(8), bytes(16)) }),
      fc.record({ type: fc.constant(MsgType.PUSH), id, blob: bytes(1, BLOB_MAX_BYTES) }),
      fc.record({ type: fc.constant(MsgType.ACK), ids: fc.array(id, { minLength: 1, maxLength: ACK_IDS_MAX }) }),
    ),
    tag: bytes(16),
  }) as fc.Arbitrary<Message>,
  RESULT: fc.record({ type: fc.constant(MsgType.RESULT), id, status: fc.constantFrom(200, 300) }),
  PUSH: fc.record({ type: fc.constant(MsgType.PUSH), id, blob: bytes(1, BLOB_MAX_BYTES) }),
  ACK: fc.record({ type: fc.constant(MsgType.ACK), ids: fc.array(id, { minLength: 1, maxLength: ACK_IDS_MAX }) }),
  CERT_REQUEST: fc.record({ type: fc.constant(MsgType.CERT_REQUEST), cookie, fingerprint: fp }),
  CERT: fc.record({ type: fc.constant(MsgType.CERT), fingerprint: fp, cert }),
  DIR_JOIN: fc.record({ type: fc.constant(MsgType.DIR_JOIN), name: text(0, DIRECTORY_NAME_MAX_BYTES) }),
  DIR_LIST: fc.record({ type: fc.constant(MsgType.DIR_LIST), cookie, page: u16 }),
  DIR_PAGE: fc
    .record({
      pages: fc.integer({ min: 1, max: 0xffff }),
      pick: fc.nat(),
      entries: fc.array(fc.record({ fingerprint: fp, name: text(1, DIRECTORY_NAME_MAX_BYTES) }), { maxLength: DIRECTORY_PAGE_ENTRIES_MAX }),
    })
    .map(({ pages, pick, entries }) => ({ type: MsgType.DIR_PAGE, page: pick % pages, pages, entries })),
  ERROR: fc.record({
    type: fc.constant(MsgType.ERROR),
    code: u16,
    ref: fc.oneof(bytes(0), bytes(MESSAGE_ID_BYTES), bytes(FINGERPRINT_BYTES)),
    detail: text(0, ERROR_DETAIL_MAX_BYTES),
  }),
};

const anyMessage = fc.oneof(...Object.values(arbitraries));

/** encode() again, keeping the padding of a REGISTER or HELLO as it was. */
function reencode(msg: Message, length: number): Uint8Array {
  return msg.type === MsgType.REGISTER || msg.type === MsgType.HELLO ? encode({ ...msg, padTo: length }) : encode(msg);
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** A text form for deep comparison: bytes as hex, object keys sorted, prototypes ignored. */
function canon(v: unknown): string {
  return JSON.stringify(v, (k, x: unknown) => {
    if (k === 'signed') return undefined; // decode's view of the MAC'd bytes, not part of a message
    if (x instanceof Uint8Array) return `bytes:${hex(x)}`;
    if (x && typeof x === 'object' && !Array.isArray(x)) {
      return Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    return x;
  });
}

for (const [name, arb] of Object.entries(arbitraries)) {
  t.test(`${name}: decode(encode(m)) is m and encode(decode(b)) is b`, async (t) => {
    const r = fc.check(
      fc.property(arb, (m) => {
        const b = encode(m);
        if (b.length > DATAGRAM_MAX_BYTES) return false;
        const d = decode(b);
        if (!d.ok || canon(d.msg) !== canon(m)) return false;
        return hex(reencode(d.msg, b.length)) === hex(b);
      }),
      { seed: SEED, numRuns: RUNS },
    );
    t.notOk(r.failed, `seed ${SEED}: ${r.counterexample ? JSON.stringify(r.counterexample) : ''}`);
  });
}

t.test('REGISTER and HELLO with any padding round trip and keep their length', async (t) => {
  const padded = fc.tuple(fc.oneof(arbitraries.REGISTER, arbitraries.HELLO), fc.integer({ min: 0, max: DATAGRAM_MAX_BYTES }));
  const r = fc.check(
    fc.property(padded, ([m, padTo]) => {
      const b = encode({ ...m, padTo } as Message);
      const d = decode(b);
      return d.ok && b.length >= Math.min(padTo, DATAGRAM_MAX_BYTES) && hex(reencode(d.msg, b.length)) === hex(b);
    }),
    { seed: SEED, numRuns: RUNS },
  );
  t.notOk(r.failed, `seed ${SEED}: ${r.counterexample ? JSON.stringify(r.counterexample) : ''}`);
});

t.test('a mutated datagram that still decodes has exactly one encoding', async (t) => {
  let stillValid = 0;
  const mutation = fc.record({
    m: anyMessage,
    at: fc.nat(),
    value: fc.integer({ min: 0, max: 255 }),
    kind: fc.constantFrom('set', 'insert', 'delete'),
  });
  const r = fc.check(
    fc.property(mutation, ({ m, at, value, kind }) => {
      const b = encode(m);
      const i = at % (b.length + 1);
      let x: Uint8Array;
      if (kind === 'set') x = Uint8Array.from(b, (v, j) => (j === i ? value : v));
      else if (kind === 'insert') x = Uint8Array.from([...b.subarray(0, i), value, ...b.subarray(i)]);
      else x = Uint8Array.from([...b.subarray(0, i), ...b.subarray(i + 1)]);
      const d = decode(x);
      if (!d.ok) return true;
      stillValid++;
      return hex(reencode(d.msg, x.length)) === hex(x);
    }),
    { seed: SEED, numRuns: 3000 },
  );
  t.notOk(r.failed, `seed ${SEED}: ${r.counterexample ? JSON.stringify(r.counterexample) : ''}`);
  t.ok(stillValid > 100, `enough mutants stayed valid to mean something (${stillValid})`);
});

t.test('the properties can fail: a codec that dropped a byte would be caught', async (t) => {
  const r = fc.check(
    fc.property(arbitraries.PUSH, (m) => {
      const b = encode(m);
      const d = decode(b.subarray(0, b.length - 1));
      return d.ok;
    }),
    { seed: SEED, numRuns: 20 },
  );
  t.ok(r.failed);
});
