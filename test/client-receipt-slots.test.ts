/**
 * Receipts whose sender's peer keeps refusing them (src/client/outgoing.ts, RECEIPT_TRIES_MAX):
 * a sender that went away with its mailbox full must not hold the receipt slots
 * (receiptTransfersMax) for ever, or no other sender would get a receipt again. Three clients and
 * two real peers over the virtual network.
 */
import t from 'tap';
import { Peer } from '../src/peer/index.js';
import { MsgType, decode } from '../src/protocol/index.js';
import { Client, MemoryClientStore, RECEIPT_TRIES_MAX } from '../src/client/index.js';
import { generateIdentity, type Identity } from '../src/identity/certificate.js';
import { addrKey, type Addr } from '../src/core/types.js';
import { VNet } from './helpers/vnet.js';

const START_MS = Date.UTC(2026, 0, 1);
const P1: Addr = { host: '10.0.0.1', port: 7000 };
const P2: Addr = { host: '10.0.0.2', port: 7000 };
const A: Addr = { host: '10.0.1.1', port: 5000 };
const B: Addr = { host: '10.0.2.1', port: 5000 };
const C: Addr = { host: '10.0.3.1', port: 5000 };

const ids = {} as Record<'p1' | 'p2' | 'a' | 'b' | 'c', Identity>;
t.before(async () => {
  const notBefore = new Date(START_MS - 86400_000);
  for (const k of ['p1', 'p2', 'a', 'b', 'c'] as const) ids[k] = (await generateIdentity({ notBefore }))!;
});

t.test('a receipt refused busy again and again is given up, so receipts to other senders still go', async (t) => {
  const net = new VNet({ seed: 'receipt-slots', startMs: START_MS });
  net.add(P1, new Peer({ identity: ids.p1, random: net.random('p1'), rateLimit: null }, net.now));
  // Carol's peer holds one message for her at most.
  net.add(P2, new Peer({ identity: ids.p2, random: net.random('p2'), rateLimit: null, mailboxMessagesMax: 1 }, net.now));
  // Alice may have one receipt in flight.
  net.add(A, new Client({ identity: ids.a, peer: P1, store: new MemoryClientStore(), random: net.random('a'), receiptTransfersMax: 1 }, net.now));
  net.add(B, new Client({ identity: ids.b, peer: P1, store: new MemoryClientStore(), random: net.random('b') }, net.now));
  net.add(C, new Client({ identity: ids.c, peer: P2, store: new MemoryClientStore(), random: net.random('c') }, net.now));
  const a = net.machine<Client>(A);
  const b = net.machine<Client>(B);
  const c = net.machine<Client>(C);
  t.ok(net.runUntil(() => a.registered && b.registered && c.registered, 600_000), 'all registered');
  a.addContact(net.now, `${ids.b.fingerprintHex}@10.0.0.1:7000`, 'bob');
  a.addContact(net.now, `${ids.c.fingerprintHex}@10.0.0.2:7000`, 'carol');
  b.addContact(net.now, `${ids.a.fingerprintHex}@10.0.0.1:7000`, 'alice');
  c.addContact(net.now, `${ids.a.fingerprintHex}@10.0.0.1:7000`, 'alice');
  const first = c.send(net.now, ['alice'], 'carol 0');
  t.ok(net.runUntil(() => c.messageState(first[0]!)?.state === 'delivered', 600_000), 'carol and alice exchange');

  // Carol's device takes no more pushes: her peer keeps what comes for her, and her mailbox there
  // is full once it holds one. She sends two more messages, and goes away for good.
  const refused = new Map<string, number>();
  net.filter = (d) => {
    if (addrKey(d.from) === addrKey(P2) && addrKey(d.to) === addrKey(C)) return false;
    if (addrKey(d.from) === addrKey(P2) && addrKey(d.to) === addrKey(A)) {
      const r = decode(d.data);
      const m = r.ok && r.msg.type === MsgType.SESSION ? r.msg.inner : r.ok ? r.msg : undefined;
      if (m?.type === MsgType.ERROR) refused.set(Buffer.from(m.ref).toString('hex'), (refused.get(Buffer.from(m.ref).toString('hex')) ?? 0) + 1);
    }
    return true;
  };
  c.send(net.now, ['alice'], 'carol 1');
  c.send(net.now + 1, ['alice'], 'carol 2');
  t.ok(net.runUntil(() => [...refused.values()].some((n) => n >= 2), 3_600_000), 'a receipt of alice to carol is refused again and again');
  net.setUp(C, false);

  // Bob's message to alice gets its receipt all the same.
  const fromBob = b.send(net.now, ['alice'], 'bob 0');
  t.ok(net.runUntil(() => b.messageState(fromBob[0]!)?.state === 'delivered', 3_600_000), "bob's message is delivered");
  t.ok(Math.max(...refused.values()) <= RECEIPT_TRIES_MAX, `no receipt was refused more than RECEIPT_TRIES_MAX (${RECEIPT_TRIES_MAX}) times`);
  t.ok((a.stats().drops['receipt_refused'] ?? 0) >= 1, 'the refused receipt was given up');
});
