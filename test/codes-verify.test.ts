import t from 'tap';
import { createHash } from 'node:crypto';
import { cborEncode } from '../src/protocol/cbor.js';
import {
  decodeVerifyMessage, encodeVerifyMessage, verifyCode, verifyCommitment, VerifyKind, VerifySession, type VerifyMessage,
} from '../src/codes/verify.js';

/** Deterministic Random: SHA-256(seed || counter) blocks. */
function seeded(seed: string): (n: number) => Uint8Array {
  let counter = 0;
  return (n) => {
    const out = new Uint8Array(n);
    for (let off = 0; off < n; off += 32) {
      const block = createHash('sha256').update(`${seed}/${counter++}`).digest();
      out.set(block.subarray(0, Math.min(32, n - off)), off);
    }
    return out;
  };
}
const fp = (name: string) => new Uint8Array(createHash('sha256').update(`cert of ${name}`).digest());
const A = fp('alice');
const B = fp('bob');
const M1 = fp('mallory as bob');
const M2 = fp('mallory as alice');

function honestRun(seed: string): { a: VerifySession; b: VerifySession } {
  const a = new VerifySession(A, B, 'initiator', seeded(`${seed}/a`));
  const b = new VerifySession(B, A, 'responder', seeded(`${seed}/b`));
  const r1 = b.receive(a.start());
  if (!r1.ok || !r1.reply) throw new Error('commit refused');
  const r2 = a.receive(r1.reply);
  if (!r2.ok || !r2.reply) throw new Error('nonce refused');
  b.receive(r2.reply);
  return { a, b };
}

t.test('honest sides get equal 6-digit codes', async (t) => {
  let equal = 0;
  const codes = new Set<string>();
  const runs = 2000;
  for (let i = 0; i < runs; i++) {
    const { a, b } = honestRun(`honest/${i}`);
    if (a.code !== undefined && /^\d{6}$/.test(a.code) && a.code === b.code && a.state === 'compare' && b.state === 'compare') equal++;
    codes.add(a.code ?? '');
  }
  t.equal(equal, runs);
  t.ok(codes.size > runs * 0.99, 'codes vary from run to run');
  const { a, b } = honestRun('confirm');
  a.confirm(true);
  b.confirm(false);
  t.equal(a.state, 'confirmed');
  t.equal(b.state, 'failed');
  t.equal(b.failure, 'codes_differ');
});

t.test('messages encode and decode; malformed bodies are refused with reasons', async (t) => {
  const sid = new Uint8Array(16).fill(1);
  const v = new Uint8Array(32).fill(2);
  for (const m of [
    { kind: VerifyKind.COMMIT, sessionId: sid, commit: v },
    { kind: VerifyKind.NONCE, sessionId: sid, nonce: v },
    { kind: VerifyKind.OPEN, sessionId: sid, nonce: v },
  ] as VerifyMessage[]) {
    const bytes = encodeVerifyMessage(m);
    t.equal(bytes[1], m.kind, 'kind is the first array item');
    t.same(decodeVerifyMessage(bytes), { ok: true, msg: m });
  }
  t.same(decodeVerifyMessage(new Uint8Array([0xff])), { ok: false, reason: 'bad_cbor' });
  t.same(decodeVerifyMessage(cborEncode([1, sid])), { ok: false, reason: 'bad_shape' });
  t.same(decodeVerifyMessage(cborEncode([1, new Uint8Array(15), v])), { ok: false, reason: 'bad_shape' });
  t.same(decodeVerifyMessage(cborEncode([9, sid, v])), { ok: false, reason: 'unknown_kind' });
  t.same(decodeVerifyMessage(null as unknown as Uint8Array), { ok: false, reason: 'bad_cbor' });
  t.throws(() => encodeVerifyMessage({ kind: VerifyKind.NONCE, sessionId: sid, nonce: new Uint8Array(31) }));
});

function started(seed: string) {
  const a = new VerifySession(A, B, 'initiator', seeded(`${seed}/a`));
  const b = new VerifySession(B, A, 'responder', seeded(`${seed}/b`));
  const commit = a.start();
  return { a, b, commit };
}

t.test('out-of-order messages are refused and fail the session', async (t) => {
  const { a, b, commit } = started('order');
  const initiator2 = new VerifySession(A, B, 'initiator', seeded('x'));
  initiator2.start();
  t.same(initiator2.receive(commit), { ok: false, reason: 'out_of_order' });
  t.equal(initiator2.state, 'failed');
  const r = b.receive(commit);
  t.ok(r.ok);
  if (!r.ok || !r.reply) return;
  const r2 = a.receive(r.reply);
  if (!r2.ok || !r2.reply) return t.fail('nonce refused');
  // The responder sees OPEN before COMMIT: refused.
  const fresh = new VerifySession(B, A, 'responder', seeded('y'));
  t.same(fresh.receive(r2.reply), { ok: false, reason: 'out_of_order' });
  t.same(fresh.receive(commit), { ok: false, reason: 'session_failed' }, 'a failed session stays failed');
  // A responder that gets a NONCE; an initiator that gets an OPEN.
  t.same(new VerifySession(B, A, 'responder', seeded('z')).receive(r.reply), { ok: false, reason: 'out_of_order' });
  t.same(a.receive(r2.reply), { ok: false, reason: 'out_of_order' });
  t.equal(a.state, 'failed');
  t.same(a.receive(r.reply), { ok: false, reason: 'session_failed' });
});

t.test('replayed messages are refused without changing the session', async (t) => {
  const { a, b, commit } = started('replay');
  const r = b.receive(commit);
  if (!r.ok || !r.reply) return t.fail();
  t.same(b.receive(commit), { ok: false, reason: 'replayed' });
  t.equal(b.state, 'awaiting_open');
  const r2 = a.receive(r.reply);
  if (!r2.ok || !r2.reply) return t.fail();
  t.same(a.receive(r.reply), { ok: false, reason: 'replayed' });
  const r3 = b.receive(r2.reply);
  t.ok(r3.ok && r3.code === r2.code);
  t.same(b.receive(r2.reply), { ok: false, reason: 'replayed' });
  t.equal(b.state, 'compare');
  b.confirm(true);
  t.same(b.receive(r2.reply), { ok: false, reason: 'replayed' });
  t.same(b.receive(commit), { ok: false, reason: 'replayed' });
  t.equal(b.state, 'confirmed');
  // A second, different NONCE (a man in the middle retrying) is not a replay: it fails the session.
  const { a: a2, b: b2, commit: c2 } = started('second-nonce');
  const n1 = b2.receive(c2);
  if (!n1.ok || !n1.reply) return t.fail();
  t.ok(a2.receive(n1.reply).ok);
  const other = decodeVerifyMessage(n1.reply);
  if (!other.ok) return t.fail();
  const forged = encodeVerifyMessage({ kind: VerifyKind.NONCE, sessionId: other.msg.sessionId, nonce: new Uint8Array(32).fill(9) });
  t.same(a2.receive(forged), { ok: false, reason: 'out_of_order' });
  t.equal(a2.state, 'failed');
});

t.test('forged messages are refused: wrong session, opening that does not match, garbage', async (t) => {
  const { a, b, commit } = started('forge');
  const r = b.receive(commit);
  if (!r.ok || !r.reply) return t.fail();
  const nonce = decodeVerifyMessage(r.reply);
  if (!nonce.ok || nonce.msg.kind !== VerifyKind.NONCE) return t.fail();
  const wrongSid = encodeVerifyMessage({ ...nonce.msg, sessionId: new Uint8Array(16) });
  t.same(a.receive(wrongSid), { ok: false, reason: 'wrong_session' });
  t.equal(a.state, 'failed');

  // An OPEN whose nonce does not match the commitment.
  const s = started('forge-open');
  const r1 = s.b.receive(s.commit);
  if (!r1.ok || !r1.reply) return t.fail();
  const r2 = s.a.receive(r1.reply);
  if (!r2.ok || !r2.reply) return t.fail();
  const open = decodeVerifyMessage(r2.reply);
  if (!open.ok || open.msg.kind !== VerifyKind.OPEN) return t.fail();
  const bad = new Uint8Array(open.msg.nonce);
  bad[0]! ^= 1;
  t.same(s.b.receive(encodeVerifyMessage({ ...open.msg, nonce: bad })), { ok: false, reason: 'bad_commitment' });
  t.same(s.b.receive(r2.reply), { ok: false, reason: 'session_failed' }, 'the genuine opening comes too late');
  t.equal(s.b.code, undefined);

  // A commitment made for other fingerprints does not open for this pair.
  const wrongPair = new VerifySession(B, M2, 'responder', seeded('wp'));
  t.ok(wrongPair.receive(s.commit).ok);
  const sidOk = decodeVerifyMessage(s.commit);
  if (!sidOk.ok) return t.fail();
  t.same(wrongPair.receive(r2.reply), { ok: false, reason: 'bad_commitment' });

  const g = new VerifySession(B, A, 'responder', seeded('g'));
  t.same(g.receive(new Uint8Array([1, 2, 3])), { ok: false, reason: 'malformed' });
  t.equal(g.state, 'failed');
});

t.test('local misuse throws PEERPOST_VERIFY_* errors', async (t) => {
  const a = new VerifySession(A, B, 'initiator', seeded('m'));
  t.throws(() => a.confirm(true), { code: 'PEERPOST_VERIFY_STATE' });
  a.start();
  t.throws(() => a.start(), { code: 'PEERPOST_VERIFY_STATE' });
  t.throws(() => new VerifySession(B, A, 'responder', seeded('m')).start(), { code: 'PEERPOST_VERIFY_STATE' });
  t.throws(() => new VerifySession(new Uint8Array(3), A, 'responder', seeded('m')), { code: 'PEERPOST_VERIFY_BAD_INPUT' });
  t.throws(() => new VerifySession(A, B, 'initiator', () => new Uint8Array(2)).start(), { code: 'PEERPOST_VERIFY_BAD_INPUT' });
});

// ---------------------------------------------------------------------------------------------
// A man in the middle. Alice (initiator) believes M1 is Bob; Bob (responder) believes M2 is Alice.
// M runs both sessions and wins when both sides show the same code. Each side replies at once, so
// M's freedom is the order of its four moves (a1: Alice commits, m1: M sends its nonce to Alice,
// who answers with her opening; m2: M commits to Bob, who answers with his nonce; m3: M opens to
// Bob), and the values it sends, chosen from everything it has seen so far.

/** What the two honest sides run: the real session, or a variant without commitment. */
interface Side {
  start(): Uint8Array;
  receive(body: Uint8Array): { ok: true; reply?: Uint8Array; code?: string } | { ok: false; reason: string };
  readonly code: string | undefined;
}
type Variant = 'committing' | 'broken';

/** The broken variant: the initiator's first message carries its nonce in the clear. */
class NonCommittingSession implements Side {
  code: string | undefined;
  private nonce: Uint8Array | undefined;
  private sid = new Uint8Array(16);
  private theirNonce: Uint8Array | undefined;
  constructor(private readonly me: Uint8Array, private readonly them: Uint8Array, private readonly role: 'initiator' | 'responder', private readonly random: (n: number) => Uint8Array) {}
  start(): Uint8Array {
    this.nonce = this.random(32);
    return encodeVerifyMessage({ kind: VerifyKind.COMMIT, sessionId: this.sid, commit: this.nonce });
  }
  receive(body: Uint8Array): { ok: true; reply?: Uint8Array; code?: string } | { ok: false; reason: string } {
    const d = decodeVerifyMessage(body);
    if (!d.ok) return d;
    const m = d.msg;
    if (this.role === 'responder' && m.kind === VerifyKind.COMMIT) {
      this.theirNonce = m.commit;
      this.nonce = this.random(32);
      return { ok: true, reply: encodeVerifyMessage({ kind: VerifyKind.NONCE, sessionId: this.sid, nonce: this.nonce }) };
    }
    if (this.role === 'initiator' && m.kind === VerifyKind.NONCE) {
      this.code = verifyCode(this.nonce!, m.nonce, this.me, this.them);
      return { ok: true, reply: encodeVerifyMessage({ kind: VerifyKind.OPEN, sessionId: this.sid, nonce: this.nonce! }), code: this.code };
    }
    if (this.role === 'responder' && m.kind === VerifyKind.OPEN && Buffer.from(m.nonce).equals(this.theirNonce!)) {
      this.code = verifyCode(m.nonce, this.nonce!, this.them, this.me);
      return { ok: true, code: this.code };
    }
    return { ok: false, reason: 'refused' };
  }
}

type Move = 'a1' | 'm1' | 'm2' | 'm3';
const ORDERINGS: Move[][] = [];
(function interleave(x: Move[], y: Move[], acc: Move[]): void {
  if (!x.length && !y.length) ORDERINGS.push(acc);
  if (x.length) interleave(x.slice(1), y, [...acc, x[0]!]);
  if (y.length) interleave(x, y.slice(1), [...acc, y[0]!]);
})(['a1', 'm1'], ['m2', 'm3'], []);

type NonceToAlice = 'random' | 'copy_bob_nonce' | 'copy_own_opening' | 'copy_alice_first' | 'grind';
type ToBob = 'random' | 'copy_nonce_to_alice' | 'copy_alice_nonce' | 'relay_alice_commit';
const NONCE_TO_ALICE: NonceToAlice[] = ['random', 'copy_bob_nonce', 'copy_own_opening', 'copy_alice_first', 'grind'];
const TO_BOB: ToBob[] = ['random', 'copy_nonce_to_alice', 'copy_alice_nonce', 'relay_alice_commit'];

/**
 * Pick a nonce x for Alice so that Alice's code, computed with M's best knowledge of Alice's nonce
 * (her clear nonce in the broken variant; in the real one only her commitment, which M uses as a
 * guess), equals Bob's code. Tries at most `budget` candidates; the candidate sits at a fixed
 * offset so each try is one SHA-256.
 */
function grind(aliceGuess: Uint8Array, target: string, budget: number, start: Uint8Array): Uint8Array {
  const label = Buffer.from('peerpost/1 verify-code', 'ascii');
  const buf = Buffer.concat([label, aliceGuess, start, A, M1]);
  const off = label.length + 32;
  const want = BigInt(target);
  for (let i = 0; i < budget; i++) {
    buf.writeUInt32BE(i, off);
    const h = createHash('sha256').update(buf).digest();
    if (h.readBigUInt64BE(0) % 1_000_000n === want) break;
  }
  return new Uint8Array(buf.subarray(off, off + 32));
}

interface MitmResult { aliceCode?: string; bobCode?: string; matched: boolean }

function mitm(variant: Variant, order: Move[], toAlice: NonceToAlice, toBob: ToBob, seed: string, grindBudget: number): MitmResult {
  const make = (me: Uint8Array, them: Uint8Array, role: 'initiator' | 'responder', s: string): Side =>
    variant === 'committing' ? new VerifySession(me, them, role, seeded(s)) : new NonCommittingSession(me, them, role, seeded(s));
  const alice = make(A, M1, 'initiator', `${seed}/alice`);
  const bob = make(B, M2, 'responder', `${seed}/bob`);
  const mRandom = seeded(`${seed}/mallory`);
  // What M has seen or chosen.
  let aliceFirst: VerifyMessage | undefined; // COMMIT (commitment, or the clear nonce in the broken variant)
  let aliceNonce: Uint8Array | undefined; // from her OPEN
  let bobNonce: Uint8Array | undefined;
  let bobSid: Uint8Array | undefined;
  let xToAlice: Uint8Array | undefined;
  let yToBob: Uint8Array | undefined;
  let bobCode: string | undefined;
  const m2Sid = mRandom(16);

  for (const move of order) {
    if (move === 'a1') {
      const d = decodeVerifyMessage(alice.start());
      if (d.ok) aliceFirst = d.msg;
    } else if (move === 'm1') {
      const first = aliceFirst as Extract<VerifyMessage, { kind: 1 }>;
      let x: Uint8Array;
      if (toAlice === 'copy_bob_nonce' && bobNonce) x = bobNonce;
      else if (toAlice === 'copy_own_opening' && yToBob) x = yToBob;
      else if (toAlice === 'copy_alice_first') x = first.commit;
      else if (toAlice === 'grind' && bobCode !== undefined) x = grind(first.commit, bobCode, grindBudget, mRandom(32));
      else x = mRandom(32);
      xToAlice = x;
      const r = alice.receive(encodeVerifyMessage({ kind: VerifyKind.NONCE, sessionId: first.sessionId, nonce: x }));
      if (r.ok && r.reply) {
        const open = decodeVerifyMessage(r.reply);
        if (open.ok && open.msg.kind === VerifyKind.OPEN) aliceNonce = open.msg.nonce;
      }
    } else if (move === 'm2') {
      let commit: Uint8Array;
      let sid = m2Sid;
      if (toBob === 'relay_alice_commit' && aliceFirst?.kind === VerifyKind.COMMIT) {
        commit = aliceFirst.commit;
        sid = aliceFirst.sessionId;
      } else {
        if (toBob === 'copy_nonce_to_alice' && xToAlice) yToBob = xToAlice;
        else if (toBob === 'copy_alice_nonce' && aliceNonce) yToBob = aliceNonce;
        else if (toBob === 'copy_alice_nonce' && variant === 'broken' && aliceFirst?.kind === VerifyKind.COMMIT) yToBob = aliceFirst.commit;
        else yToBob = mRandom(32);
        commit = variant === 'committing' ? verifyCommitment(yToBob, M2, B) : yToBob;
      }
      bobSid = sid;
      const r = bob.receive(encodeVerifyMessage({ kind: VerifyKind.COMMIT, sessionId: sid, commit }));
      if (r.ok && r.reply) {
        const d = decodeVerifyMessage(r.reply);
        if (d.ok && d.msg.kind === VerifyKind.NONCE) bobNonce = d.msg.nonce;
      }
    } else {
      // m3: open to Bob. Relaying Alice's commitment, M can only open with Alice's nonce (if seen).
      const y = toBob === 'relay_alice_commit' ? (aliceNonce ?? mRandom(32)) : yToBob!;
      yToBob = y;
      const r = bob.receive(encodeVerifyMessage({ kind: VerifyKind.OPEN, sessionId: bobSid!, nonce: y }));
      if (r.ok && r.code) bobCode = r.code;
    }
  }
  const aliceCode = alice.code;
  return { aliceCode, bobCode, matched: aliceCode !== undefined && bobCode !== undefined && aliceCode === bobCode };
}

t.test('orderings: all six interleavings of the two sessions', async (t) => {
  t.equal(ORDERINGS.length, 6);
  t.equal(new Set(ORDERINGS.map((o) => o.join())).size, 6);
});

t.test('a man in the middle cannot steer the codes to match: 0 of 20,000 adaptive runs', async (t) => {
  const runs = 20_000;
  let matched = 0;
  let bothShown = 0;
  let i = 0;
  while (i < runs) {
    for (const order of ORDERINGS) {
      for (const toAlice of NONCE_TO_ALICE) {
        for (const toBob of TO_BOB) {
          if (i >= runs) break;
          const r = mitm('committing', order, toAlice, toBob, `mitm/${i++}`, 64);
          if (r.matched) matched++;
          if (r.aliceCode !== undefined && r.bobCode !== undefined) bothShown++;
        }
      }
    }
  }
  t.equal(matched, 0, 'no run made the codes match (each run: probability 1e-6)');
  t.ok(bothShown > runs / 2, `both sides reached a code in ${bothShown} runs, so the comparison was really made`);
});

t.test('a man in the middle who grinds to completion still fails against the commitment', async (t) => {
  // Bob's session first, so Bob's code is known when M picks its nonce for Alice. M grinds
  // against its best guess of Alice's nonce; it does not have the nonce itself.
  const r = mitm('committing', ['m2', 'm3', 'a1', 'm1'], 'grind', 'random', 'grind/committing', 1 << 24);
  t.ok(r.aliceCode && r.bobCode);
  t.not(r.aliceCode, r.bobCode);
});

t.test('the same man in the middle DOES steer a variant without commitment (the test can fail)', async (t) => {
  const r = mitm('broken', ['a1', 'm2', 'm3', 'm1'], 'grind', 'random', 'grind/broken', 1 << 24);
  t.ok(r.aliceCode && r.bobCode);
  t.equal(r.aliceCode, r.bobCode, `steered to ${r.aliceCode}`);
});
