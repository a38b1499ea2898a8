/**
 * Cost of one message sealed to the recipient's certificate (the form before sessions, still used
 * for a first message) and sent in a ratchet session, in one run: bytes on the wire and CPU per
 * message for sealing and for opening, plus the size of a stored session and the cost of trying a
 * message against a session it is not for (a receiver with header encryption tries its sessions
 * in turn). The `ratchet` section of `npm run bench` (scripts/bench.ts) calls ratchetCost();
 * alone: node --import tsx scripts/bench/ratchet.ts [messages per case, default 2000]
 */
import { randomBytes } from 'node:crypto';
import { generateIdentity } from '../../src/identity/certificate.js';
import { certKeys, identityXKeys } from '../../src/crypto/keys.js';
import { acceptRatchet, ratchetDecrypt, ratchetEncrypt, startRatchet, type RatchetState } from '../../src/crypto/ratchet.js';
import { encodeRatchetState } from '../../src/crypto/ratchet-state.js';
import { openSealed, seal, verifySender } from '../../src/crypto/seal.js';
import { cborEncode } from '../../src/protocol/cbor.js';
import { RATCHET_SKIPPED_KEYS_MAX } from '../../src/crypto/ratchet.js';
import { pathToFileURL } from 'node:url';

const PEER = '198.51.100.7:4747';
const NOW = 1_790_000_000_000;
const random = (n: number): Uint8Array => new Uint8Array(randomBytes(n));

const alice = (await generateIdentity({ commonName: 'alice' }))!;
const bob = (await generateIdentity({ commonName: 'bob' }))!;

export interface RatchetCostRow {
  case: string;
  bodyBytes: number;
  wireBytes: number;
  sendUsPerMessage: number;
  openUsPerMessage: number;
}

export interface RatchetCost {
  messagesPerCase: number;
  rows: RatchetCostRow[];
  /** CPU to try a message against a session it is not for. */
  foreignTrialUs: number;
  storedSessionBytes: number;
  storedSessionMaxBytes: number;
}

/** CPU microseconds (user + system) per call of `f` over `n` calls. */
function cpuUs(n: number, f: (i: number) => void): number {
  for (let i = 0; i < Math.min(200, n); i++) f(i);
  const start = process.cpuUsage();
  for (let i = 0; i < n; i++) f(i);
  const d = process.cpuUsage(start);
  return (d.user + d.system) / n;
}

function newSession(): { a: RatchetState; b: RatchetState } {
  const st = startRatchet({ initiatorFingerprint: alice.fingerprint, responderFingerprint: bob.fingerprint, responderXPublic: certKeys(bob.cert)!.xPublicRaw, random });
  const bx = identityXKeys(bob);
  const b = acceptRatchet({ initiatorFingerprint: alice.fingerprint, responderFingerprint: bob.fingerprint, responderXPrivate: bx.xPrivate, responderXPublic: bx.xPublicRaw, start: st.start, random });
  return { a: st.state, b };
}

/** The ratchet payload a client would send: the sealed inner array less `from` and `sig`, which the session makes needless. */
function payload(body: Uint8Array): Uint8Array {
  return cborEncode([1, PEER, random(16), NOW, body]);
}

/** The sealed form and the ratchet, at three body sizes, `N` messages per case. */
export function ratchetCost(N: number): RatchetCost {
  const rows: RatchetCostRow[] = [];
  const r1 = (x: number): number => Math.round(x * 10) / 10;
  for (const bodyBytes of [20, 300, 800]) {
    const body = random(bodyBytes);
    const content = { kind: 1, id: random(16), sentAtMs: NOW, body };
    const blobs: Uint8Array[] = [];
    const sealUs = cpuUs(N, () => {
      blobs.push(seal({ sender: alice, senderPeer: PEER, recipientCert: bob.cert, content, random }));
    });
    const openUs = cpuUs(N, (i) => {
      const o = openSealed(bob, blobs[i % blobs.length]!);
      if (!o.ok || !verifySender(o.opened, alice.cert, bob.fingerprint)) throw new Error('seal does not open');
    });
    rows.push({ case: 'sealed (+ verifySender)', bodyBytes, wireBytes: blobs[0]!.length, sendUsPerMessage: r1(sealUs), openUsPerMessage: r1(openUs) });

    // One direction only: symmetric ratchet, no DH step.
    let s = newSession();
    const p = payload(body);
    const oneWay: Uint8Array[] = [];
    const encUs = cpuUs(N, () => {
      const r = ratchetEncrypt(s.b, p, random);
      s.b = r.state;
      oneWay.push(r.blob);
    });
    let k = 0;
    const decUs = cpuUs(N, () => {
      const r = ratchetDecrypt(s.a, oneWay[k++]!, NOW, random);
      if (!r.ok) throw new Error(r.reason);
      s.a = r.state;
    });
    rows.push({ case: 'ratchet, same direction', bodyBytes, wireBytes: oneWay[0]!.length, sendUsPerMessage: r1(encUs), openUsPerMessage: r1(decUs) });

    // Alternating turns: every message opens a new chain, so each opening takes a DH ratchet step.
    s = newSession();
    let from: 'a' | 'b' = 'b';
    let sendTotal = 0;
    let openTotal = 0;
    for (let i = 0; i < 200 + N; i++) {
      const to: 'a' | 'b' = from === 'a' ? 'b' : 'a';
      const c0 = process.cpuUsage();
      const r = ratchetEncrypt(s[from], p, random);
      const c1 = process.cpuUsage(c0);
      s[from] = r.state;
      const c2 = process.cpuUsage();
      const o = ratchetDecrypt(s[to], r.blob, NOW, random);
      const c3 = process.cpuUsage(c2);
      if (!o.ok) throw new Error(o.reason);
      s[to] = o.state;
      if (i >= 200) {
        sendTotal += c1.user + c1.system;
        openTotal += c3.user + c3.system;
      }
      from = to;
    }
    rows.push({ case: 'ratchet, turns (DH step each)', bodyBytes, wireBytes: oneWay[0]!.length, sendUsPerMessage: r1(sendTotal / N), openUsPerMessage: r1(openTotal / N) });
  }

  const s = newSession();
  const other = newSession();
  const foreign = ratchetEncrypt(other.b, payload(random(20)), random).blob;
  const trialUs = cpuUs(N, () => {
    if (ratchetDecrypt(s.a, foreign, NOW, random).ok) throw new Error('opened a foreign message');
  });
  let t = newSession();
  const r = ratchetEncrypt(t.b, payload(random(20)), random);
  t = { a: t.a, b: r.state };
  const o = ratchetDecrypt(t.a, r.blob, NOW, random);
  if (o.ok) t.a = o.state;
  const stored = encodeRatchetState(t.a).length;
  return { messagesPerCase: N, rows, foreignTrialUs: r1(trialUs), storedSessionBytes: stored, storedSessionMaxBytes: stored + 76 * RATCHET_SKIPPED_KEYS_MAX };
}

/** The table of ratchetCost(), one line per row. */
export function ratchetCostLines(c: RatchetCost): string[] {
  const head = ['case', 'body B', 'wire B', 'send us/msg', 'open us/msg'];
  const rows = [head, ...c.rows.map((x) => [x.case, String(x.bodyBytes), String(x.wireBytes), x.sendUsPerMessage.toFixed(1), x.openUsPerMessage.toFixed(1)])];
  const widths = head.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return [
    ...rows.map((r) => r.map((x, i) => (i === 0 ? x.padEnd(widths[i]!) : x.padStart(widths[i]!))).join('  ')),
    `trying a message against a session it is not for: ${c.foreignTrialUs} us`,
    `stored session: ${c.storedSessionBytes} bytes, plus 76 per skipped key (at most ${RATCHET_SKIPPED_KEYS_MAX}: ${c.storedSessionMaxBytes} bytes)`,
    `(${c.messagesPerCase} messages per case, node ${process.version}, CPU time of this process)`,
  ];
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const line of ratchetCostLines(ratchetCost(Number(process.argv[2] ?? 2000)))) console.log(line);
}
