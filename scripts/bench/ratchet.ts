/**
 * Cost of one message sealed to the recipient's certificate (today) and sent in a ratchet session,
 * in one run: bytes on the wire and CPU per message for sealing and for opening, plus the size of
 * a stored session and the cost of trying a message against a session it is not for (a receiver
 * with header encryption tries its sessions in turn). Standalone: it is not part of `npm run bench`.
 * Run: node --import tsx scripts/bench/ratchet.ts [messages per case, default 2000]
 */
import { randomBytes } from 'node:crypto';
import { generateIdentity } from '../../src/identity/certificate.js';
import { certKeys, identityXKeys } from '../../src/crypto/keys.js';
import { acceptRatchet, ratchetDecrypt, ratchetEncrypt, startRatchet, type RatchetState } from '../../src/crypto/ratchet.js';
import { encodeRatchetState } from '../../src/crypto/ratchet-state.js';
import { openSealed, seal, verifySender } from '../../src/crypto/seal.js';
import { cborEncode } from '../../src/protocol/cbor.js';

const N = Number(process.argv[2] ?? 2000);
const PEER = '198.51.100.7:4747';
const NOW = 1_790_000_000_000;
const random = (n: number): Uint8Array => new Uint8Array(randomBytes(n));

const alice = (await generateIdentity({ commonName: 'alice' }))!;
const bob = (await generateIdentity({ commonName: 'bob' }))!;

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

const rows: string[][] = [['case', 'body B', 'wire B', 'send us/msg', 'open us/msg']];
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
  rows.push(['seal + open + verifySender', String(bodyBytes), String(blobs[0]!.length), sealUs.toFixed(1), openUs.toFixed(1)]);

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
  rows.push(['ratchet, same direction', String(bodyBytes), String(oneWay[0]!.length), encUs.toFixed(1), decUs.toFixed(1)]);

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
  rows.push(['ratchet, turns (DH step per message)', String(bodyBytes), String(oneWay[0]!.length), (sendTotal / N).toFixed(1), (openTotal / N).toFixed(1)]);
}

const s = newSession();
const other = newSession();
const foreign = ratchetEncrypt(other.b, payload(random(20)), random).blob;
const trialUs = cpuUs(N, () => {
  if (ratchetDecrypt(s.a, foreign, NOW, random).ok) throw new Error('opened a foreign message');
});
const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
for (const r of rows) console.log(r.map((x, c) => (c === 0 ? x.padEnd(widths[c]!) : x.padStart(widths[c]!))).join('  '));
console.log(`\ntrying a message against a session it is not for: ${trialUs.toFixed(1)} us`);
let t = newSession();
const r = ratchetEncrypt(t.b, payload(random(20)), random);
t = { a: t.a, b: r.state };
const o = ratchetDecrypt(t.a, r.blob, NOW, random);
if (o.ok) t.a = o.state;
console.log(`stored session: ${encodeRatchetState(t.a).length} bytes, plus 76 per skipped key (at most ${1000}: ${encodeRatchetState(t.a).length + 76 * 1000} bytes)`);
console.log(`(${N} messages per case, node ${process.version}, CPU time of this process)`);
