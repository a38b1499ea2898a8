/**
 * A flood against one peer, driven directly (no link): garbage, registration attempts from many
 * addresses and DELIVERs to random fingerprints with valid cookies. Memory must stay within the
 * configured budget and a legitimate client must still register and get its messages (one held
 * for it before the flood is evicted with the other absent recipients' and sent again).
 */
import t from 'tap';
import { randomFillSync } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { MsgType, WireError, decode, encode } from '../src/protocol/index.js';
import { MESSAGE_OVERHEAD_BYTES, Peer } from '../src/peer/index.js';
import type { Addr } from '../src/core/types.js';
import { PEER_ADDR, identityNo, makeWorld, seededRandom } from './helpers/link.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** heapUsed + arrayBuffers after full collections (array buffer memory is freed asynchronously). */
async function memory(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** Feed one datagram and return what the peer sent back. */
function feed(peer: Peer, now: number, from: Addr, data: Uint8Array): Uint8Array[] {
  peer.handle(now, from, data);
  const out: Uint8Array[] = [];
  for (let tx = peer.pollTransmit(); tx; tx = peer.pollTransmit()) out.push(tx.data);
  return out;
}

const STORAGE_BYTES_MAX = 8 * 1024 * 1024;

t.test('flood: garbage, registration attempts, DELIVERs to random fingerprints', async (t) => {
  const start = 1_800_000_000_000;
  const { link, peer, clients } = await makeWorld(2, { storageBytesMax: STORAGE_BYTES_MAX }, start);
  const [legit, sender] = clients as [NonNullable<(typeof clients)[0]>, NonNullable<(typeof clients)[0]>];
  const rnd = seededRandom(7);
  const cert = (await identityNo(5)).cert;
  // Before the flood: a message waits for the legitimate client, who is offline.
  sender.hello(PEER_ADDR);
  link.flush();
  const early = sender.deliver(PEER_ADDR, legit.fingerprint, new Uint8Array(300).fill(1));
  link.flush();
  const base = await memory();
  let now = start;
  const t0 = performance.now();

  // 200,000 garbage datagrams: random bytes behind every type byte, from many addresses.
  const pool = Array.from({ length: 1024 }, (_, i) => {
    const d = rnd(1 + (i * 37) % 1200);
    d[0] = i % 7 === 0 ? 1 : 2;
    d[1] = i % 22;
    return d;
  });
  let answered = 0;
  for (let i = 0; i < 200_000; i++) {
    const from = { host: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, port: 1024 + (i % 60000) };
    answered += feed(peer, now, from, pool[i % pool.length]!).length;
    if (i % 1000 === 0) now += 1;
  }
  const garbageMs = performance.now() - t0;

  // 50,000 registration attempts: padded REGISTER, unpadded REGISTER, proofs with forged cookies.
  // The datagrams come from small pools (encoding is not what is measured); sources all differ.
  const t1 = performance.now();
  let challenges = 0;
  const registers = Array.from({ length: 64 }, () => encode({ type: MsgType.REGISTER, cert, nonce: rnd(16) }));
  const unpadded = Array.from({ length: 64 }, () => encode({ type: MsgType.REGISTER, cert, nonce: rnd(16), padTo: 0 }));
  const proofs = Array.from({ length: 64 }, () =>
    encode({ type: MsgType.REGISTER_PROOF, cert, nonce: rnd(16), cookie: rnd(20), peerKey: rnd(32), clientKey: rnd(32), wrappedKey: rnd(48), sig: rnd(64) }));
  for (let i = 0; i < 50_000; i++) {
    const from = { host: `172.16.${(i >> 8) & 255}.${i & 255}`, port: 2000 + (i % 50000) };
    const kind = i % 5;
    const data = (kind < 1 ? registers : kind < 4 ? proofs : unpadded)[i % 64]!;
    for (const out of feed(peer, now, from, data)) if (out[1] === MsgType.CHALLENGE) challenges++;
    if (i % 1000 === 0) now += 1;
  }
  const registerMs = performance.now() - t1;
  const afterRegister = (await memory()) - base;

  // 50,000 DELIVERs to random fingerprints from 1,000 addresses in as many /24s, holding valid
  // cookies: no source prefix reaches its share, the departed class fills and evicts its oldest.
  const t2 = performance.now();
  const senders: Array<{ from: Addr; cookie: Uint8Array }> = [];
  for (let i = 0; i < 1000; i++) {
    const from = { host: `100.${64 + (i >> 8)}.${i & 255}.1`, port: 3000 + i };
    const r = decode(feed(peer, now, from, encode({ type: MsgType.HELLO, nonce: rnd(16) }))[0]!);
    if (!r.ok || r.msg.type !== MsgType.COOKIE) throw new Error('no cookie');
    senders.push({ from, cookie: r.msg.cookie });
  }
  let stored = 0;
  let refused = 0;
  // One DELIVER template per sender; `to` and `id` are overwritten with random bytes each time.
  const templates = senders.map((x) => encode({
    type: MsgType.DELIVER, cookie: x.cookie, to: new Uint8Array(32).fill(0xa1), id: new Uint8Array(16).fill(0xb2), blob: new Uint8Array(500).fill(0xab),
  }));
  const toAt = Buffer.from(templates[0]!).indexOf(Buffer.alloc(32, 0xa1));
  const idAt = Buffer.from(templates[0]!).indexOf(Buffer.alloc(16, 0xb2));
  for (let i = 0; i < 50_000; i++) {
    const s = senders[i % senders.length]!;
    const d = new Uint8Array(templates[i % senders.length]!);
    randomFillSync(d.subarray(toAt, toAt + 32));
    randomFillSync(d.subarray(idAt, idAt + 16));
    const r = decode(feed(peer, now, s.from, d)[0]!);
    if (r.ok && r.msg.type === MsgType.RESULT) stored++;
    else if (r.ok && r.msg.type === MsgType.ERROR) refused++;
    if (i % 1000 === 0) now += 1;
  }
  const deliverMs = performance.now() - t2;
  const grown = (await memory()) - base;
  const s = peer.stats();
  t.comment(`garbage: 200,000 in ${garbageMs.toFixed(0)} ms, ${answered} answered`);
  t.comment(`registration attempts: 50,000 in ${registerMs.toFixed(0)} ms, ${challenges} challenges`);
  t.comment(`delivers: 50,000 in ${deliverMs.toFixed(0)} ms, stored ${stored}, refused ${refused}, evicted ${s.drops.message_evicted}`);
  const buckets = (Reflect.get(peer, 'limiter') as { size: number }).size;
  t.comment(`memory after garbage and registration attempts: +${(afterRegister / 1048576).toFixed(1)} MiB; ${buckets} rate-limit buckets`);
  t.comment(`waiting ${s.waitingMessages} messages, ${s.waitingBytes} B of blobs; heap+arrayBuffers grew ${(grown / 1048576).toFixed(1)} MiB (budget ${STORAGE_BYTES_MAX / 1048576} MiB)`);
  t.equal(answered, 0, 'garbage is never answered');
  t.equal(challenges, 10_000, 'one CHALLENGE per padded REGISTER, none otherwise');
  t.equal(s.registered, 0, 'no registration from the flood');
  t.equal(refused, 0, 'messages to absent recipients are stored, evicting the oldest of them');
  t.ok((s.drops.message_evicted ?? 0) > 0, 'the departed bound was reached');
  t.ok(s.waitingBytes + s.waitingMessages * MESSAGE_OVERHEAD_BYTES <= STORAGE_BYTES_MAX / 2, 'charged bytes within departedBytesMax (half of storageBytesMax)');
  t.ok(afterRegister < 8 * 1048576, 'garbage and registration attempts leave only bounded rate-limit state');
  t.ok(grown - afterRegister < STORAGE_BYTES_MAX, `memory for waiting messages ${grown - afterRegister} B within storageBytesMax`);

  // A legitimate client still registers, gets the message held for it, and new ones.
  link.now = now;
  legit.register(PEER_ADDR);
  link.flush();
  t.ok(legit.registered);
  t.same(legit.pushes.map((p) => p.id), [], 'the message held before the flood was evicted with the oldest absent ones');
  sender.hello(PEER_ADDR);
  link.flush();
  sender.deliver(PEER_ADDR, legit.fingerprint, new Uint8Array(300).fill(1), early);
  link.flush();
  t.same(legit.pushes.map((p) => p.id), [early], 'its sender, still without a receipt, sends it again');
  t.same(sender.resultsOf(early), [300, 200]);
  const late = sender.deliver(PEER_ADDR, legit.fingerprint, new Uint8Array(300).fill(2));
  link.flush();
  t.same(sender.resultsOf(late), [200], 'delivered while the departed class is full');
});
