/**
 * Groups stay pairwise with ratcheted sessions: a group message is one copy per member, each
 * through the sender's session with that member. A recorded copy opens with its member's session
 * and with no other member's.
 */
import t from 'tap';
import { Peer } from '../src/peer/index.js';
import { Client, MemoryClientStore, type ClientEvent } from '../src/client/index.js';
import { generateIdentity, type Identity } from '../src/identity/certificate.js';
import { decode } from '../src/protocol/codec.js';
import { MsgType } from '../src/protocol/constants.js';
import { RATCHET_VERSION, ratchetDecrypt } from '../src/crypto/ratchet.js';
import { decodeRatchetState } from '../src/crypto/ratchet-state.js';
import { cborDecodeChecked } from '../src/protocol/cbor.js';
import { decodeText } from '../src/client/content.js';
import { unhex } from '../src/client/context.js';
import type { Addr } from '../src/core/types.js';
import { VNet } from './helpers/vnet.js';

const START_MS = Date.UTC(2026, 0, 1);
const P: Addr = { host: '10.0.0.1', port: 7000 };
const who = ['a', 'b', 'c'] as const;
type Who = (typeof who)[number];
const addr: Record<Who, Addr> = { a: { host: '10.0.1.1', port: 5000 }, b: { host: '10.0.2.1', port: 5000 }, c: { host: '10.0.3.1', port: 5000 } };
const names: Record<Who, string> = { a: 'alice', b: 'bob', c: 'carol' };

t.test('a group message: one ratcheted copy per member, each opening only with its member\'s session', async (t) => {
  const ids = {} as Record<Who | 'p', Identity>;
  for (const k of ['p', ...who] as const) ids[k] = (await generateIdentity({ notBefore: new Date(START_MS - 86400_000) }))!;
  const net = new VNet({ seed: 'group', startMs: START_MS });
  net.add(P, new Peer({ identity: ids.p, random: net.random('p'), rateLimit: null }, net.now));
  const stores = { a: new MemoryClientStore(), b: new MemoryClientStore(), c: new MemoryClientStore() };
  for (const k of who) net.add(addr[k], new Client({ identity: ids[k], peer: P, store: stores[k], random: net.random(k) }, net.now));
  const c = (k: Who): Client => net.machine<Client>(addr[k]);
  const events: Record<Who, ClientEvent[]> = { a: [], b: [], c: [] };
  const step = net.step.bind(net);
  net.step = (limit?: number) => {
    const r = step(limit);
    for (const k of who) for (let e = c(k).pollEvent(); e; e = c(k).pollEvent()) events[k].push(e);
    return r;
  };
  t.ok(net.runUntil(() => who.every((k) => c(k).registered), 600_000), 'all registered');
  for (const x of who) for (const y of who) if (x !== y) c(x).addContact(net.now, `${ids[y].fingerprintHex}@10.0.0.1:7000`, names[y]);
  const fp = (k: Who): string => ids[k].fingerprintHex;
  const running = (): boolean => who.every((x) => who.every((y) => {
    if (x === y) return true;
    const rx = stores[x].load()?.ratchets?.[fp(y)];
    const ry = stores[y].load()?.ratchets?.[fp(x)];
    return !!rx && !!ry && rx.start === ry.start;
  }));
  t.ok(net.runUntil(running, 600_000), 'a session between each pair');
  // Each pair exchanges a message, so alice's sessions can send.
  const warm: Array<[Who, string]> = [];
  for (const x of who) for (const y of who) if (x !== y) warm.push([x, c(x).send(net.now, [names[y]], `hi ${names[y]}`)[0]!]);
  t.ok(net.runUntil(() => warm.every(([x, id]) => c(x).messageState(id)?.state === 'delivered'), 600_000), 'warmed up');

  // The state of bob's and carol's sessions with alice before the group message, as saved.
  const before = { b: decodeRatchetState(unhex(stores.b.load()!.ratchets![fp('a')]!.s)), c: decodeRatchetState(unhex(stores.c.load()!.ratchets![fp('a')]!.s)) };
  const copies: Partial<Record<'b' | 'c', Uint8Array>> = {};
  net.onDeliver = (d) => {
    if (d.from.host !== addr.a.host || d.data[1] !== MsgType.DELIVER) return;
    const m = decode(d.data);
    if (!m.ok || m.msg.type !== MsgType.DELIVER) return;
    const to = Buffer.from(m.msg.to).toString('hex');
    const k = to === fp('b') ? 'b' : to === fp('c') ? 'c' : undefined;
    if (k && !copies[k]) copies[k] = m.msg.blob;
  };
  const gid = c('a').createGroup(net.now, 'trio', ['bob', 'carol']);
  const sent = c('a').sendGroup(net.now, gid, 'to the group');
  t.equal(sent.length, 2, 'one message per member');
  t.ok(net.runUntil(() => sent.every((id) => c('a').messageState(id)?.state === 'delivered'), 600_000), 'both delivered');
  for (const k of ['b', 'c'] as const) {
    t.same(events[k].filter((e) => e.type === 'message' && e.text === 'to the group').length, 1, `${names[k]} shows it once`);
  }
  t.ok(copies.b && copies.c, 'both copies recorded');
  t.equal(copies.b![0], RATCHET_VERSION, 'bob\'s copy went through the session');
  t.equal(copies.c![0], RATCHET_VERSION, 'and carol\'s');
  t.notSame(Buffer.from(copies.b!), Buffer.from(copies.c!), 'two different blobs');
  const rnd = net.random('check');
  const open = (k: 'b' | 'c', blob: Uint8Array): ReturnType<typeof ratchetDecrypt> => ratchetDecrypt(before[k], blob, net.now, rnd);
  for (const [k, other] of [['b', 'c'], ['c', 'b']] as const) {
    const r = open(k, copies[k]!);
    t.ok(r.ok, `${names[k]}'s copy opens with ${names[k]}'s session`);
    if (r.ok) {
      const d = cborDecodeChecked(r.payload);
      const body = d.ok && Array.isArray(d.value) ? (d.value as unknown[])[4] : undefined;
      t.equal(body instanceof Uint8Array ? decodeText(body)?.text : undefined, 'to the group', 'and holds the group message');
    }
    t.same(open(other, copies[k]!), { ok: false, reason: 'not_this_session' }, `and not with ${names[other]}'s`);
  }
});
