/**
 * One simulated run, driven by one seed: a topology of peers and clients (the real Peer and Client
 * state machines, each client persisting to its own MemoryClientStore), traffic between them, and
 * faults (loss, duplication, reordering, delay; peer restarts that lose RAM; client restarts that
 * keep their store, some of them mid-exchange: right after the client sent a DELIVER, or right
 * after it handled a datagram from its peer; clients going offline and moving to a new address,
 * sometimes saying so with networkChanged() and sometimes not; an attacker node in some runs;
 * peers that die for good or come back at another address, and clients, homed on one or two
 * peers, that change their peers and publish their home record). Home records go through a
 * simulated lookup service (dht.ts) with delay, loss and stale answers. After the active phase
 * the faults stop, clients whose peers died or moved take live ones, and time runs until every
 * message has reached a final state (or a generous bound), then the invariants of ledger.ts and
 * the bounds of every machine are checked. One more invariant: at the start of the quiet phase up
 * to two contacts of every client that changed its peers send it a message through their contact
 * entry as it was (no user action); each must be delivered (`moved-unreached` otherwise).
 */
import { Peer, MESSAGE_OVERHEAD_BYTES, type PeerOptions } from '../../src/peer/index.js';
import { Client, MemoryClientStore, CHUNK_COUNT_MAX, type ClientEvent, type ClientOptions } from '../../src/client/index.js';
import { UsageError } from '../../src/core/errors.js';
import { addrKey, type Addr } from '../../src/core/types.js';
import { fingerprintOf, toHex, type Identity } from '../../src/identity/certificate.js';
import { MsgType } from '../../src/protocol/constants.js';
import { decode } from '../../src/protocol/codec.js';
import { Attacker } from './attacker.js';
import { identities } from './identities.js';
import { Ledger, type MessageKind, type SentRecord, type Violation } from './ledger.js';
import { CALM, SimNet, type Endpoint, type Faults, type Wire } from './net.js';
import { Rng } from './prng.js';
import { DHT_CALM, SimDht, type DhtFaults } from './dht.js';
import type { HomeRecord } from '../../src/core/home.js';
import { Tracer, type TraceRequest } from './trace.js';

/** Virtual start of every run (inside the fixed identities' validity). */
export const START_MS = Date.UTC(2026, 0, 1);
/** Steps one run may take before it is declared spinning. */
export const RUN_STEPS_MAX = 3_000_000;
/** After every message is final, time runs this much longer (late duplicates would show here). */
export const SETTLE_MS = 2 * 60_000;
/** Beyond the message TTL, the quiet phase waits at most this long for final states. */
export const QUIET_MARGIN_MS = 15 * 60_000;
/** Least virtual time between two bound checks of one machine. */
export const PEER_CHECK_EVERY_MS = 250;
export const CLIENT_CHECK_EVERY_MS = 5_000;

export interface SimLimits {
  peersMin: number;
  peersMax: number;
  clientsMin: number;
  clientsMax: number;
  activeMsMin: number;
  activeMsMax: number;
  /** Each client starts up to this many sends during the active phase (at least one). */
  sendsPerClientMax: number;
  /** Client messageTtlMs is drawn in this range: the quiet phase lasts at most about that long. */
  ttlMsMin: number;
  ttlMsMax: number;
}

export const DEFAULT_LIMITS: SimLimits = {
  peersMin: 2, peersMax: 5, clientsMin: 6, clientsMax: 24, activeMsMin: 4 * 60_000, activeMsMax: 12 * 60_000, sendsPerClientMax: 3,
  ttlMsMin: 20 * 60_000, ttlMsMax: 60 * 60_000,
};

/** Smaller runs for the test suite: 500 of them in a couple of minutes. */
export const CI_LIMITS: SimLimits = {
  ...DEFAULT_LIMITS, clientsMax: 8, activeMsMin: 3 * 60_000, activeMsMax: 4 * 60_000, ttlMsMin: 12 * 60_000, ttlMsMax: 20 * 60_000,
};

export interface RunOptions {
  seed: number;
  limits?: Partial<SimLimits>;
  trace?: TraceRequest;
}

export interface RunResult {
  seed: number;
  peers: number;
  clients: number;
  faults: Faults;
  messages: number;
  byKind: Record<string, number>;
  delivered: number;
  /** Final `failed` states, by reason. */
  failed: Record<string, number>;
  /** Failed at the sender, yet shown once at the recipient (the receipt came too late). */
  failedShown: number;
  /** Failed although sender and recipient both exist and were back online for the quiet phase. */
  failedReachable: number;
  /** A few of those: `senderFp:id`. */
  failedReachableKeys: string[];
  sendRefused: Record<string, number>;
  datagrams: number;
  lost: number;
  duplicated: number;
  unroutable: number;
  peerRestarts: number;
  clientRestarts: number;
  /** Client restarts right after a DELIVER it sent or a datagram from its peer it handled. */
  midExchange: number;
  /** `session-restarted` events with `by: 'us'`: a client found a ratcheted session out of step. */
  sessionRestarts: number;
  offline: number;
  moves: number;
  gone: number;
  /** Peers that died for good, peers that came back at another address, clients that changed their peers. */
  peerDeaths: number;
  peerReaddressed: number;
  peerChanges: number;
  /** Messages sent in the quiet phase to clients that changed their peers (each must arrive). */
  probes: number;
  dht: SimDht['stats'];
  attacker: boolean;
  attackerSent: number;
  rejected: Record<string, number>;
  registrations: number;
  virtualMs: number;
  steps: number;
  violations: Violation[];
  violationCount: number;
  /** Part ids (hex) of the messages named by violations, for a trace. */
  partIds: Record<string, string[]>;
  trace: string[];
}

interface PeerSlot {
  readonly idx: number;
  readonly name: string;
  readonly identity: Identity;
  addr: Addr;
  key: string;
  /** Stopped for good. */
  dead: boolean;
  ep: Endpoint;
  gen: number;
  checkedAtMs: number;
}

interface ClientSlot {
  readonly idx: number;
  readonly name: string;
  readonly identity: Identity;
  readonly fp: string;
  /** Its peers, in order (one or two). */
  homes: PeerSlot[];
  /** The peer addresses its client was last given (a peer that moved is stale here until the user updates it). */
  keys: string[];
  /** Changed its peers at least once. */
  moved: boolean;
  /** Sequence number of its last published home record. */
  seq: number;
  readonly store: MemoryClientStore;
  readonly addrs: Set<string>;
  ep: Endpoint;
  gen: number;
  client: Client | null;
  contacts: number[];
  ghosts: number[];
  groups: string[];
  gone: boolean;
  checkedAtMs: number;
  /** Armed: the client crashes after its next DELIVER ('send') or its next datagram from its peer ('receive'). */
  crash?: { side: 'send' | 'receive'; downMs: number };
}

interface Action {
  readonly at: number;
  readonly seq: number;
  readonly label: string;
  readonly who: readonly string[];
  readonly run: () => void;
}

export function runSeed(opts: RunOptions): RunResult {
  return new Scenario(opts).run();
}

class Scenario {
  private readonly seed: number;
  private readonly lim: SimLimits;
  private readonly net: SimNet;
  private readonly ledger = new Ledger(START_MS);
  private readonly tracer: Tracer | undefined;
  private readonly plan: Rng;
  private readonly traffic: Rng;
  private readonly peers: PeerSlot[] = [];
  private readonly clients: ClientSlot[] = [];
  private readonly ghosts: Identity[] = [];
  private readonly byEp = new Map<Endpoint, ClientSlot>();
  private readonly peerByEp = new Map<Endpoint, PeerSlot>();
  private readonly byFp = new Map<string, ClientSlot>();
  private readonly addrNames = new Map<string, string>();
  private readonly deliverTo = new Map<string, string>();
  private readonly actions: Action[] = [];
  private actionSeq = 0;
  private attacker: Attacker | undefined;
  private attackerEp: Endpoint | undefined;
  private readonly peerOpts: Omit<PeerOptions, 'identity' | 'random'>;
  private readonly clientOpts: Omit<ClientOptions, 'identity' | 'peer' | 'store' | 'random'>;
  private readonly faults: Faults;
  private nextPort = 40_000;
  private sends = 0;
  private readonly counts = { peerRestarts: 0, clientRestarts: 0, midExchange: 0, sessionRestarts: 0, offline: 0, moves: 0, gone: 0, registrations: 0, peerDeaths: 0, peerReaddressed: 0, peerChanges: 0 };
  private readonly dht: SimDht;
  private readonly dhtFaults: DhtFaults;
  private readonly probes = new Set<string>();
  private dhtEp: Endpoint | undefined;
  private readonly sendRefused: Record<string, number> = {};
  private activeEndMs = START_MS;

  constructor(opts: RunOptions) {
    this.seed = opts.seed >>> 0;
    this.lim = { ...DEFAULT_LIMITS, ...opts.limits };
    const topo = Rng.stream(this.seed, 'topology');
    this.plan = Rng.stream(this.seed, 'plan');
    this.traffic = Rng.stream(this.seed, 'traffic');
    this.faults = drawFaults(topo);
    const dr = Rng.stream(this.seed, 'dht');
    this.dhtFaults = { delayMs: dr.int(20, 2000), jitterMs: dr.int(0, 3000), loss: dr.chance(0.3) ? 0 : dr.real(0, 0.3), stale: dr.chance(0.3) ? 0 : dr.real(0, 0.3) };
    this.dht = new SimDht(dr, this.dhtFaults, (asker, fp, rec) => this.dhtAnswer(asker, fp, rec));
    this.activeEndMs = START_MS + topo.int(this.lim.activeMsMin, this.lim.activeMsMax);
    this.net = new SimNet(Rng.stream(this.seed, 'wire'), START_MS, this.faults);
    this.tracer = opts.trace ? new Tracer(opts.trace, this.ledger, (k) => this.addrNames.get(k) ?? k) : undefined;
    const ttl = topo.int(this.lim.ttlMsMin / 60_000, this.lim.ttlMsMax / 60_000) * 60_000;
    this.clientOpts = {
      messageTtlMs: ttl,
      keepaliveIntervalMs: topo.pick([10_000, 25_000]),
      receiptWaitMs: topo.int(10, 60) * 1000,
      receiptWaitMaxMs: topo.int(2, 10) * 60_000,
      unackedPerRecipientMax: topo.int(1, 3),
      partialMessagesMax: topo.int(4, 16),
      receiptTransfersMax: topo.pick([8, 256]),
    };
    this.peerOpts = {
      mailboxMessagesMax: topo.pick([4, 16, 128]),
      storageBytesMax: topo.pick([32 * 1024, 256 * 1024, 64 * 1024 * 1024]),
      pushAckTimeoutMs: topo.int(1000, 3000),
    };
    this.build(topo);
  }

  // -------------------------------------------------------------------------------------------
  // topology

  private build(topo: Rng): void {
    const pool = identities();
    const nPeers = topo.int(this.lim.peersMin, Math.min(this.lim.peersMax, pool.peers.length));
    const nClients = topo.int(this.lim.clientsMin, Math.min(this.lim.clientsMax, pool.clients.length));
    const ids = topo.sample(pool.clients, nClients);
    const nGhosts = topo.chance(0.5) ? topo.int(1, pool.ghosts.length) : 0;
    this.ghosts.push(...pool.ghosts.slice(0, nGhosts));
    for (let p = 0; p < nPeers; p++) {
      const addr = { host: `10.0.${p}.1`, port: 7000 };
      const slot: PeerSlot = { idx: p, name: `p${p}`, identity: pool.peers[p]!, addr, key: addrKey(addr), dead: false, ep: undefined as unknown as Endpoint, gen: 0, checkedAtMs: 0 };
      slot.ep = this.net.add(slot.name, addr, null);
      this.peerByEp.set(slot.ep, slot);
      this.addrNames.set(slot.key, slot.name);
      this.ledger.name(slot.identity.fingerprintHex, slot.name);
      this.peers.push(slot);
      this.startPeer(slot);
    }
    const nats = Math.max(1, Math.ceil(nClients / 2));
    for (let i = 0; i < nClients; i++) {
      const identity = ids[i]!;
      const addr = { host: `100.64.${topo.int(0, nats - 1)}.1`, port: this.nextPort++ };
      const homes = topo.sample(this.peers, this.peers.length > 1 && topo.chance(0.4) ? 2 : 1);
      const slot: ClientSlot = {
        idx: i, name: `c${i}`, identity, fp: identity.fingerprintHex, homes, keys: homes.map((h) => h.key), moved: false, seq: 0, store: new MemoryClientStore(),
        addrs: new Set([addrKey(addr)]), ep: undefined as unknown as Endpoint, gen: 0, client: null, contacts: [], ghosts: [], groups: [],
        gone: false, checkedAtMs: 0,
      };
      slot.ep = this.net.add(slot.name, addr, null);
      this.byEp.set(slot.ep, slot);
      this.byFp.set(slot.fp, slot);
      this.addrNames.set(addrKey(addr), slot.name);
      this.ledger.name(slot.fp, slot.name);
      this.clients.push(slot);
    }
    this.ghosts.forEach((g, k) => this.ledger.name(g.fingerprintHex, `ghost${k}`));
    if (topo.chance(0.5)) this.addAttacker(topo);
    this.net.onSend = (w, from) => this.onSend(w, from);
    this.net.afterCall = (ep) => this.afterCall(ep);
    this.net.afterHandle = (ep, w) => {
      if (w.data[1] === MsgType.REGISTER_PROOF) this.checkRegistration(ep, w.from, w.data);
      const c = this.byEp.get(ep);
      if (c?.crash?.side === 'receive' && c.keys.includes(addrKey(w.from))) this.crashMidExchange(c);
    };
    if (this.tracer) this.net.onFate = (w, fate) => this.tracer!.datagram(this.net.now, w, fate);
    this.dhtEp = this.net.add('dht', { host: '192.0.2.53', port: 53 }, this.dht);
    for (const c of this.clients) this.startClient(c);
    for (const c of this.clients) this.publish(c);
    for (const c of this.clients) this.addContacts(c, topo);
  }

  private addAttacker(topo: Rng): void {
    const pool = identities();
    const addr = { host: '172.16.6.6', port: 6666 };
    this.attacker = new Attacker(
      pool.attacker, this.peers.map((p) => p.addr), Rng.stream(this.seed, 'attacker'), START_MS, topo.int(2000, 10_000), this.activeEndMs,
      this.clients.map((c) => c.identity), addr, pool.sybils,
    );
    for (const [k, s] of pool.sybils.entries()) this.ledger.name(s.fingerprintHex, `sybil${k}`);
    this.attackerEp = this.net.add('attacker', addr, this.attacker);
    this.addrNames.set(addrKey(addr), 'attacker');
    this.ledger.name(pool.attacker.fingerprintHex, 'attacker');
  }

  private startPeer(p: PeerSlot): void {
    const peer = new Peer({ identity: p.identity, random: Rng.stream(this.seed, `${p.name}/${p.gen++}`).random(), ...this.peerOpts }, this.net.now);
    this.net.setMachine(p.ep, peer);
  }

  private startClient(c: ClientSlot): void {
    const client = new Client(
      { identity: c.identity, peer: this.addrOf(c.keys[0]!), morePeers: c.keys.slice(1).map((k) => this.addrOf(k)), store: c.store, random: Rng.stream(this.seed, `${c.name}/${c.gen++}`).random(), ...this.clientOpts },
      this.net.now,
    );
    client.resolveHomes(true);
    c.client = client;
    this.net.setMachine(c.ep, client);
  }

  private addContacts(c: ClientSlot, topo: Rng): void {
    const others = this.clients.filter((x) => x !== c);
    for (const o of topo.sample(others, topo.int(2, 6))) {
      const cert = topo.chance(0.4) ? o.identity.cert : undefined;
      if (!c.contacts.includes(o.idx)) {
        this.net.call<Client>(c.ep, (m) => m.addContact(this.net.now, `${o.fp}@${o.keys[0]}`, o.name, cert));
        c.contacts.push(o.idx);
      }
      // Contacts are mutual: a client withholds receipts from strangers until it accepts them.
      if (!o.contacts.includes(c.idx)) {
        this.net.call<Client>(o.ep, (m) => m.addContact(this.net.now, `${c.fp}@${c.keys[0]}`, c.name));
        o.contacts.push(c.idx);
      }
    }
    this.ghosts.forEach((g, k) => {
      if (!topo.chance(0.2)) return;
      const cert = topo.chance(0.5) ? g.cert : undefined;
      this.net.call<Client>(c.ep, (m) => m.addContact(this.net.now, `${g.fingerprintHex}@${topo.pick(this.peers).key}`, `ghost${k}`, cert));
      c.ghosts.push(k);
    });
  }

  // -------------------------------------------------------------------------------------------
  // the plan: what happens when during the active phase

  private schedule(at: number, label: string, who: readonly string[], run: () => void): void {
    const a: Action = { at: Math.round(at), seq: this.actionSeq++, label, who, run };
    let i = this.actions.length;
    while (i > 0 && (this.actions[i - 1]!.at > a.at)) i--;
    this.actions.splice(i, 0, a);
  }

  private makePlan(): void {
    const r = this.plan;
    const end = this.activeEndMs;
    const at = (): number => START_MS + r.int(5_000, end - START_MS);
    const n = this.clients.length;
    const pickClient = (): ClientSlot => r.pick(this.clients);
    for (let i = 0, sends = n * r.int(1, this.lim.sendsPerClientMax); i < sends; i++) this.schedule(at(), 'send', [], () => this.doSend());
    for (let i = r.int(0, 3); i > 0; i--) {
      const p = r.pick(this.peers);
      const down = r.chance(0.3) ? 0 : r.int(1, 60) * 1000;
      this.schedule(at(), `restart ${p.name} (down ${down / 1000} s)`, [p.name], () => this.restartPeer(p, down));
    }
    for (let i = r.int(0, Math.ceil(n / 4)); i > 0; i--) {
      const c = pickClient();
      const down = r.int(0, 120) * 1000;
      const newPort = r.chance(0.5);
      this.schedule(at(), `restart ${c.name} (down ${down / 1000} s${newPort ? ', new port' : ''})`, [c.name], () => this.restartClient(c, down, newPort));
    }
    for (let i = r.int(0, Math.ceil(n / 4)); i > 0; i--) {
      const c = pickClient();
      const dur = r.int(5, 240) * 1000;
      const notify = r.chance(0.5);
      this.schedule(at(), `${c.name} offline ${dur / 1000} s`, [c.name], () => this.offline(c, dur, notify));
    }
    for (let i = r.int(0, Math.ceil(n / 3)); i > 0; i--) {
      const c = pickClient();
      const notify = r.chance(0.5);
      const newHost = r.chance(0.3);
      this.schedule(at(), `${c.name} moves${newHost ? ' to a new host' : ''}${notify ? ', networkChanged' : ', silently'}`, [c.name], () => this.move(c, newHost, notify));
    }
    if (r.chance(0.25)) {
      const c = pickClient();
      this.schedule(at(), `${c.name} gone for good`, [c.name], () => this.goGone(c));
    }
    // Restarts mid-exchange, from their own stream so that the plan above stays what it was.
    const m = Rng.stream(this.seed, 'mid-exchange');
    for (let i = m.int(0, Math.ceil(n / 4)); i > 0; i--) {
      const c = m.pick(this.clients);
      const crash = { side: m.chance(0.5) ? 'send' as const : 'receive' as const, downMs: m.int(0, 30) * 1000 };
      this.schedule(START_MS + m.int(5_000, end - START_MS), `${c.name} crashes after its next ${crash.side === 'send' ? 'DELIVER' : 'datagram from its peer'}`, [c.name], () => {
        c.crash = crash;
      });
    }
    if (this.peers.length >= 3 && r.chance(0.3)) {
      const p = r.pick(this.peers);
      this.schedule(at(), `${p.name} dies for good`, [p.name], () => this.killPeer(p, r.int(5, 180) * 1000));
    }
    if (r.chance(0.3)) {
      const p = r.pick(this.peers);
      const down = r.int(1, 60) * 1000;
      this.schedule(at(), `${p.name} comes back at another address (down ${down / 1000} s)`, [p.name], () => this.readdressPeer(p, down, r.int(5, 180) * 1000));
    }
    for (let i = r.int(0, Math.ceil(n / 4)); i > 0; i--) {
      const c = pickClient();
      const two = r.chance(0.4);
      this.schedule(at(), `${c.name} changes its peers`, [c.name], () => this.changePeers(c, two));
    }
  }

  // -------------------------------------------------------------------------------------------
  // homes: peers that die or move, clients that change their peers, the lookup service

  private addrOf(key: string): Addr {
    const i = key.lastIndexOf(':');
    return { host: key.slice(0, i), port: Number(key.slice(i + 1)) };
  }

  private livePeers(): PeerSlot[] {
    return this.peers.filter((p) => !p.dead);
  }

  /** A peer stops for good; each of its clients takes another peer some time later. */
  private killPeer(p: PeerSlot, fixAfterMs: number): void {
    if (p.dead || this.livePeers().length < 2) return;
    this.counts.peerDeaths++;
    p.dead = true;
    this.net.setMachine(p.ep, null);
    for (const c of this.clients) {
      if (c.homes.includes(p)) this.schedule(this.net.now + fixAfterMs, `${c.name} replaces ${p.name}`, [c.name], () => this.fixHomes(c));
    }
  }

  /** A peer stops and starts again at another address; its clients learn it some time later. */
  private readdressPeer(p: PeerSlot, downMs: number, fixAfterMs: number): void {
    if (p.dead) return;
    this.counts.peerReaddressed++;
    this.net.setMachine(p.ep, null);
    this.schedule(this.net.now + downMs, `${p.name} starts at a new address`, [p.name], () => {
      if (p.dead) return;
      const addr = { host: `10.1.${p.idx}.${1 + (this.nextPort % 250)}`, port: 7000 + (this.nextPort++ % 1000) };
      this.net.move(p.ep, addr);
      p.addr = addr;
      p.key = addrKey(addr);
      this.addrNames.set(p.key, p.name);
      if (!p.ep.machine) this.startPeer(p);
      for (const c of this.clients) {
        if (c.homes.includes(p)) this.schedule(this.net.now + fixAfterMs, `${c.name} updates ${p.name}'s address`, [c.name], () => this.fixHomes(c));
      }
    });
  }

  /** The user sets the client's peers to live ones at their current addresses (dead ones replaced). */
  private fixHomes(c: ClientSlot): void {
    let homes = c.homes.filter((p) => !p.dead);
    if (homes.length === 0) homes = [this.livePeers()[c.idx % this.livePeers().length]!];
    this.setHomes(c, homes);
  }

  private changePeers(c: ClientSlot, two: boolean): void {
    const live = this.livePeers();
    const homes = this.plan.sample(live, two && live.length > 1 ? 2 : 1);
    if (homes.map((p) => p.key).join(' ') === c.keys.join(' ')) return;
    this.counts.peerChanges++;
    this.setHomes(c, homes);
  }

  private setHomes(c: ClientSlot, homes: PeerSlot[]): void {
    if (c.gone) return;
    const keys = homes.map((p) => p.key);
    if (keys.join(' ') === c.keys.join(' ')) return;
    c.homes = homes;
    c.keys = keys;
    c.moved = true;
    // A running client publishes on its home-changed event; one that is not running will register with them when it starts.
    if (c.client) this.net.call<Client>(c.ep, (m) => m.setPeers(this.net.now, keys.map((k) => this.addrOf(k))));
    else this.publish(c);
  }

  /** Publish the client's home record (its peers as its user set them). */
  private publish(c: ClientSlot): void {
    c.seq++;
    const rec: HomeRecord = {
      fingerprint: c.identity.fingerprint,
      peers: c.keys.map((k) => {
        const p = this.peers.find((x) => x.key === k);
        return { ...this.addrOf(k), fingerprint: (p ?? c.homes[0]!).identity.fingerprint };
      }),
      seq: c.seq, timeMs: this.net.now,
    };
    this.onDht((d) => d.publish(this.net.now, c.fp, rec));
  }

  /** A call into the lookup service (so that the network sees its next deadline). */
  private onDht(fn: (d: SimDht) => void): void {
    if (this.dhtEp) this.net.call<SimDht>(this.dhtEp, fn);
    else fn(this.dht);
  }

  private dhtAnswer(asker: string, fp: string, rec: HomeRecord | null): void {
    const c = this.clients.find((x) => x.name === asker);
    if (!c?.client) return;
    this.net.call<Client>(c.ep, (m) => m.homeResolved(this.net.now, fp, rec));
  }

  /** The armed crash of `c`: its process stops now (what it committed stays, its RAM is lost). */
  private crashMidExchange(c: ClientSlot): void {
    const crash = c.crash;
    delete c.crash;
    // Only in the active phase: the quiet phase runs no plan, so a client stopped then would not start again.
    if (!crash || !c.client || this.net.now >= this.activeEndMs) return;
    this.counts.midExchange++;
    this.restartClient(c, crash.downMs, false);
  }

  private restartPeer(p: PeerSlot, downMs: number): void {
    if (p.dead) return;
    this.counts.peerRestarts++;
    this.net.setMachine(p.ep, null);
    if (downMs === 0) this.startPeer(p);
    else this.schedule(this.net.now + downMs, `${p.name} starts`, [p.name], () => p.dead || this.startPeer(p));
  }

  private restartClient(c: ClientSlot, downMs: number, newPort: boolean): void {
    if (!c.client) return;
    this.counts.clientRestarts++;
    c.client = null;
    this.net.setMachine(c.ep, null);
    this.schedule(this.net.now + downMs, `${c.name} starts`, [c.name], () => {
      if (c.client) return;
      if (newPort) this.rebind(c, false);
      this.startClient(c);
    });
  }

  private offline(c: ClientSlot, durMs: number, notify: boolean): void {
    if (c.gone || !c.ep.online) return;
    this.counts.offline++;
    this.net.setOnline(c.ep, false);
    this.schedule(this.net.now + durMs, `${c.name} online${notify ? ', networkChanged' : ''}`, [c.name], () => {
      if (c.gone) return;
      this.net.setOnline(c.ep, true);
      if (notify && c.client) this.net.call<Client>(c.ep, (m) => m.networkChanged(this.net.now));
    });
  }

  private move(c: ClientSlot, newHost: boolean, notify: boolean): void {
    this.counts.moves++;
    this.rebind(c, newHost);
    if (notify && c.client) this.net.call<Client>(c.ep, (m) => m.networkChanged(this.net.now));
  }

  private rebind(c: ClientSlot, newHost: boolean): void {
    const host = newHost ? `100.65.${this.nextPort % 250}.${1 + (this.nextPort % 7)}` : c.ep.addr.host;
    const addr = { host, port: this.nextPort++ };
    this.net.move(c.ep, addr);
    c.addrs.add(addrKey(addr));
    this.addrNames.set(addrKey(addr), c.name);
  }

  private goGone(c: ClientSlot): void {
    if (c.gone) return;
    this.counts.gone++;
    c.gone = true;
    this.net.setOnline(c.ep, false);
  }

  // -------------------------------------------------------------------------------------------
  // traffic

  private doSend(): void {
    const r = this.traffic;
    const running = this.clients.filter((c) => c.client);
    if (running.length === 0) return;
    const c = r.pick(running);
    const strangers = this.clients.filter((x) => x !== c && !c.contacts.includes(x.idx));
    const kinds: Array<[MessageKind, number]> = [
      ['single', 50], ['multi', 10], ['group', 10], ['long', 12], ['stranger', strangers.length ? 10 : 0], ['ghost', c.ghosts.length ? 4 : 0],
    ];
    let kind = weighted(r, kinds);
    if (c.contacts.length === 0 && kind !== 'ghost') kind = strangers.length ? 'stranger' : 'ghost';
    const n = ++this.sends;
    const text = makeText(r, n, c.name, kind === 'long');
    try {
      if (kind === 'group') return this.sendGroup(c, n, text);
      const targets = this.targets(c, kind, strangers);
      if (targets.length === 0) return;
      this.net.call<Client>(c.ep, (m) => {
        const ids = m.send(this.net.now, targets.map((t) => t.address), text);
        ids.forEach((id, i) => this.record(c, id, targets[i]!.fp, text, kind, undefined));
      });
    } catch (e) {
      this.refused(e);
    }
  }

  private targets(c: ClientSlot, kind: MessageKind, strangers: ClientSlot[]): Array<{ address: string; fp: string }> {
    const r = this.traffic;
    const contact = (j: number): { address: string; fp: string } => ({ address: this.clients[j]!.name, fp: this.clients[j]!.fp });
    const stranger = (s: ClientSlot): { address: string; fp: string } => ({ address: `${s.fp}@${s.keys[0]}`, fp: s.fp });
    switch (kind) {
      case 'stranger':
        return [stranger(r.pick(strangers))];
      case 'ghost': {
        const k = r.pick(c.ghosts);
        return [{ address: `ghost${k}`, fp: this.ghosts[k]!.fingerprintHex }];
      }
      case 'multi': {
        const list = r.sample(c.contacts, r.int(2, 3)).map(contact);
        if (strangers.length && r.chance(0.5)) list.push(stranger(r.pick(strangers)));
        return list;
      }
      default:
        return [contact(r.pick(c.contacts))];
    }
  }

  private sendGroup(c: ClientSlot, n: number, text: string): void {
    const r = this.traffic;
    this.net.call<Client>(c.ep, (m) => {
      let gid = c.groups.length && r.chance(0.6) ? r.pick(c.groups) : undefined;
      if (!gid) {
        const members = r.sample(c.contacts, r.int(1, 4)).map((j) => this.clients[j]!.name);
        gid = m.createGroup(this.net.now, `g${n}`, members);
        c.groups.push(gid);
      }
      const g = m.groups().find((x) => x.id === gid)!;
      const others = g.members.filter((x) => x.fingerprint !== c.fp);
      const ids = m.sendGroup(this.net.now, gid, text);
      ids.forEach((id, i) => this.record(c, id, others[i]!.fingerprint, text, 'group', gid));
    });
  }

  private record(c: ClientSlot, id: string, to: string, text: string, kind: MessageKind, groupId: string | undefined): void {
    const rec = this.ledger.onSent({
      id, from: c.fp, fromName: c.name, to, toName: this.ledger.nameOf(to), text, kind, groupId, atMs: this.net.now,
    });
    this.tracer?.sent(rec);
  }

  private refused(e: unknown): void {
    if (!(e instanceof UsageError)) throw e;
    this.sendRefused[e.code] = (this.sendRefused[e.code] ?? 0) + 1;
  }

  // -------------------------------------------------------------------------------------------
  // what the wire and the machines show

  private onSend(w: Wire, from: Endpoint): void {
    const type = w.data[1];
    if (this.attackerEp && this.byEp.has(from) && addrKey(w.to) === this.attackerEp.key) {
      // The attacker names its own address as its peer inside what it seals: a client that sends
      // there tells a stranger's chosen address where it is.
      this.ledger.violation('reveal-address', `${this.byEp.get(from)!.name} sent a datagram to the attacker's address`, this.net.now);
    }
    if (type === MsgType.DELIVER || type === MsgType.REGISTER_PROOF || type === MsgType.SESSION) this.attacker?.capture(w);
    if (type === MsgType.DELIVER) {
      const r = decode(w.data);
      if (r.ok && r.msg.type === MsgType.DELIVER) this.deliverTo.set(latin1(r.msg.id), toHex(r.msg.to));
      const c = this.byEp.get(from);
      // Stops once the datagrams it queued with this one have left (the same virtual instant).
      if (c?.crash?.side === 'send') this.schedule(this.net.now, `${c.name} crashes`, [c.name], () => this.crashMidExchange(c));
    } else if (type === MsgType.SESSION && this.peerByEp.has(from)) {
      this.checkPush(w, from);
    }
    this.tracer?.datagram(this.net.now, w, 'sent');
  }

  /** The attacker's own identity or one of its sybils. */
  private attackerOwns(fp: string): boolean {
    const pool = identities();
    return fp === pool.attacker.fingerprintHex || pool.sybils.some((s) => s.fingerprintHex === fp);
  }

  /** A peer pushes a message (inside a session) only to an address its recipient really used. */
  private checkPush(w: Wire, from: Endpoint): void {
    const r = decode(w.data);
    if (!r.ok || r.msg.type !== MsgType.SESSION) return this.ledger.violation('bad-push', `${from.name} sent an undecodable SESSION datagram`, this.net.now);
    const inner = r.msg.inner;
    if (inner.type !== MsgType.PUSH) return;
    const to = this.deliverTo.get(latin1(inner.id));
    const dest = addrKey(w.to);
    const destName = this.addrNames.get(dest) ?? dest;
    if (to === undefined) return this.ledger.violation('push-unknown', `${from.name} pushed id ${toHex(inner.id)} that no DELIVER carried, to ${destName}`, this.net.now);
    const owner = this.byFp.get(to);
    if (owner ? owner.addrs.has(dest) : this.attackerEp !== undefined && this.attackerOwns(to) && dest === this.attackerEp.key) return;
    this.ledger.violation('push-hijack', `${from.name} pushed a message for ${this.ledger.nameOf(to)} to ${destName} (${dest}), an address it never used`, this.net.now);
  }

  /**
   * After a REGISTER_PROOF, if the peer now has the proof's certificate registered at the sender's
   * address, that must be a client that really used that address. The registry is private to the
   * peer; the simulator reads it.
   */
  private checkRegistration(ep: Endpoint, from: Addr, data: Uint8Array): void {
    const p = this.peerByEp.get(ep);
    const registry = (ep.machine as unknown as { registry?: { lookup?: (now: number, fp: string) => { fp: string; addr: string } | undefined } } | null)?.registry;
    const proof = decode(data);
    if (!p || typeof registry?.lookup !== 'function' || !proof.ok || proof.msg.type !== MsgType.REGISTER_PROOF) {
      return this.ledger.violation('check-registration', 'the registration check cannot read the registry or the proof', this.net.now);
    }
    const key = addrKey(from);
    const e = registry.lookup(this.net.now, latin1(fingerprintOf(proof.msg.cert)));
    if (!e || e.addr !== key) return;
    const fp = Buffer.from(e.fp, 'latin1').toString('hex');
    const owner = this.byFp.get(fp);
    if (owner ? owner.addrs.has(key) : this.attackerOwns(fp) && key === this.attackerEp?.key) return;
    this.ledger.violation('register-hijack', `${p.name} registered ${this.ledger.nameOf(fp)} at ${this.addrNames.get(key) ?? key} (${key}), an address it never used`, this.net.now);
  }

  private afterCall(ep: Endpoint): void {
    const c = this.byEp.get(ep);
    if (c) {
      const m = c.client;
      if (!m) return;
      for (let e = m.pollEvent(); e; e = m.pollEvent()) this.onEvent(c, e);
      for (let fp = m.pollHomeRequest(); fp; fp = m.pollHomeRequest()) this.onDht((d) => d.lookup(this.net.now, c.name, fp));
      if (this.net.now - c.checkedAtMs >= CLIENT_CHECK_EVERY_MS) this.checkClientBounds(c, m);
      return;
    }
    const p = this.peerByEp.get(ep);
    if (p && this.net.now - p.checkedAtMs >= PEER_CHECK_EVERY_MS) this.checkPeerBounds(p);
  }

  private onEvent(c: ClientSlot, e: ClientEvent): void {
    const now = this.net.now;
    switch (e.type) {
      case 'message':
        this.ledger.onShown(c.fp, e, now);
        this.tracer?.shown(now, c.name, e);
        break;
      case 'delivery':
        this.ledger.onDelivery(c.fp, e, now);
        this.tracer?.delivery(now, c.fp, e);
        break;
      case 'rejected':
        this.ledger.onRejected(e.reason);
        break;
      case 'session-restarted':
        if (e.by === 'us') this.counts.sessionRestarts++;
        break;
      case 'registered':
        this.counts.registrations++;
        break;
      case 'home-changed':
        this.publish(c);
        break;
      case 'peer-identity-changed':
        this.ledger.violation('peer-identity', `${c.name} saw its peer's identity change (it never does here)`, now);
        break;
      default:
    }
  }

  private checkPeerBounds(p: PeerSlot): void {
    p.checkedAtMs = this.net.now;
    const peer = p.ep.machine as Peer | null;
    if (!peer) return;
    const s = peer.stats();
    const o = this.peerOpts;
    const charged = s.waitingBytes + s.waitingMessages * MESSAGE_OVERHEAD_BYTES;
    const recipients = this.clients.length + this.ghosts.length + 1;
    if (charged > o.storageBytesMax!) this.ledger.violation('bound', `${p.name} holds ${charged} B charged, storageBytesMax ${o.storageBytesMax}`, this.net.now);
    if (s.waitingMessages > o.mailboxMessagesMax! * recipients) {
      this.ledger.violation('bound', `${p.name} holds ${s.waitingMessages} messages for at most ${recipients} recipients of ${o.mailboxMessagesMax}`, this.net.now);
    }
    // Every client, the attacker and each of its sybils (registered by the sybil-flood action) at most once.
    const registrants = this.clients.length + 1 + identities().sybils.length;
    if (s.registered > registrants) this.ledger.violation('bound', `${p.name} has ${s.registered} registrations for at most ${registrants} identities`, this.net.now);
  }

  private checkClientBounds(c: ClientSlot, m: Client): void {
    c.checkedAtMs = this.net.now;
    const s = m.stats();
    const o = this.clientOpts;
    const bad = (what: string): void => this.ledger.violation('bound', `${c.name}: ${what}`, this.net.now);
    if (s.outboxUnfinished > 1000) bad(`${s.outboxUnfinished} unfinished messages`);
    if (s.partials > o.partialMessagesMax!) bad(`${s.partials} partial messages, partialMessagesMax ${o.partialMessagesMax}`);
    if (s.transfers > s.outboxUnfinished * CHUNK_COUNT_MAX + o.receiptTransfersMax!) bad(`${s.transfers} transfers for ${s.outboxUnfinished} messages`);
  }

  // -------------------------------------------------------------------------------------------
  // the run

  run(): RunResult {
    this.makePlan();
    let ok = this.runActive();
    if (ok) ok = this.runQuiet();
    this.finalChecks();
    return this.result();
  }

  private steps(limitMs: number, until?: () => boolean): boolean {
    while (!until?.()) {
      if (!this.net.step(limitMs)) {
        if (limitMs > this.net.now && Number.isFinite(limitMs)) this.net.now = limitMs;
        return true;
      }
      if (this.net.stats.steps > RUN_STEPS_MAX) {
        this.ledger.violation('spin', `more than ${RUN_STEPS_MAX} steps by ${this.ledger.rel(this.net.now)} (next event at ${this.ledger.rel(this.net.nextAt())})`, this.net.now);
        return false;
      }
    }
    return true;
  }

  private runActive(): boolean {
    for (;;) {
      const a = this.actions[0];
      const limit = a && a.at <= this.activeEndMs ? a.at : this.activeEndMs;
      if (!this.steps(limit)) return false;
      if (!a || a.at > this.activeEndMs) return true;
      this.actions.shift();
      this.tracer?.action(this.net.now, a.label, a.who);
      a.run();
    }
  }

  /** Faults stop, everyone who is not gone comes back, time runs until every message is final. */
  private runQuiet(): boolean {
    this.net.faults = { ...CALM, delayMs: this.faults.delayMs };
    this.dht.faults = { ...this.dhtFaults, ...DHT_CALM };
    this.actions.length = 0;
    for (const p of this.peers) if (!p.ep.machine && !p.dead) this.startPeer(p);
    for (const c of this.clients) {
      if (!c.client) this.startClient(c);
      if (!c.gone && !c.ep.online) this.net.setOnline(c.ep, true);
    }
    for (const c of this.clients) this.fixHomes(c);
    this.sendProbes();
    this.tracer?.action(this.net.now, 'quiet phase', []);
    const bound = this.net.now + this.clientOpts.messageTtlMs! + QUIET_MARGIN_MS;
    if (!this.steps(bound, () => this.ledger.unfinished === 0)) return false;
    return this.steps(this.net.now + SETTLE_MS);
  }

  /** Up to two contacts of each client that changed its peers send it a message, as their contact entry stands. */
  private sendProbes(): void {
    for (const c of this.clients) {
      if (!c.moved || c.gone) continue;
      const senders = this.clients.filter((s) => s !== c && !s.gone && s.client && c.contacts.includes(s.idx) && s.contacts.includes(c.idx)).slice(0, 2);
      for (const s of senders) {
        const n = ++this.sends;
        const text = `#${n} from ${s.name} to ${c.name}, who moved`;
        try {
          this.net.call<Client>(s.ep, (m) => {
            const [id] = m.send(this.net.now, [c.name], text);
            this.record(s, id!, c.fp, text, 'single', undefined);
            this.probes.add(`${s.fp}:${id}`);
          });
        } catch (e) {
          this.refused(e);
        }
      }
    }
  }

  private finalChecks(): void {
    const now = this.net.now;
    for (const key of this.probes) {
      const r = this.ledger.sent.get(key);
      if (r && r.state !== 'delivered') {
        this.ledger.violation('moved-unreached', `${r.fromName}'s ${r.id.slice(0, 8)} to ${r.toName}, who changed its peers, ended ${r.state}${r.reason ? ` (${r.reason})` : ''}`, now, key);
      }
    }
    this.ledger.finish(now, (r) => this.byFp.get(r.from)?.client?.messageState(r.id));
    if (this.attacker) {
      if (this.attacker.stats.pushes > 0) this.ledger.violation('push-hijack', `the attacker received ${this.attacker.stats.pushes} PUSH datagrams`, now);
    }
    for (const c of this.clients) {
      if (!c.gone && c.client && !c.client.registered) this.ledger.violation('not-registered', `${c.name} is not registered after the quiet phase`, now);
      if (c.client) this.checkClientBounds(c, c.client);
    }
    for (const p of this.peers) this.checkPeerBounds(p);
  }

  private result(): RunResult {
    const byKind: Record<string, number> = {};
    const failed: Record<string, number> = {};
    let delivered = 0;
    let failedShown = 0;
    const failedReachableKeys: string[] = [];
    for (const r of this.ledger.sent.values()) {
      byKind[r.kind] = (byKind[r.kind] ?? 0) + 1;
      if (r.state === 'delivered') delivered++;
      if (r.state === 'failed') {
        const reason = r.reason ?? 'none';
        failed[reason] = (failed[reason] ?? 0) + 1;
        if (r.shown > 0) failedShown++;
        const to = this.byFp.get(r.to);
        if (to && !to.gone && !this.byFp.get(r.from)!.gone) failedReachableKeys.push(r.key);
      }
    }
    const partIds: Record<string, string[]> = {};
    for (const v of this.ledger.violations) if (v.key && !partIds[v.key]) partIds[v.key] = this.partIdsOf(v.key);
    for (const k of failedReachableKeys.slice(0, 5)) partIds[k] ??= this.partIdsOf(k);
    const st = this.net.stats;
    return {
      seed: this.seed, peers: this.peers.length, clients: this.clients.length, faults: this.faults,
      messages: this.ledger.sent.size, byKind, delivered, failed, failedShown,
      failedReachable: failedReachableKeys.length, failedReachableKeys: failedReachableKeys.slice(0, 5), sendRefused: this.sendRefused,
      datagrams: st.sent, lost: st.lost, duplicated: st.duplicated, unroutable: st.unroutable,
      ...this.counts, probes: this.probes.size, dht: { ...this.dht.stats }, attacker: !!this.attacker, attackerSent: this.attacker ? Object.values(this.attacker.stats.sent).reduce((a, b) => a + b, 0) : 0,
      rejected: this.ledger.rejected, virtualMs: this.net.now - START_MS, steps: st.steps,
      violations: this.ledger.violations, violationCount: this.ledger.violationCount, partIds,
      trace: this.tracer?.lines() ?? [],
    };
  }

  /** The DELIVER ids of a message's parts, from its sender's store (the id itself if unknown). */
  private partIdsOf(key: string): string[] {
    const [from, id] = key.split(':') as [string, string];
    const m = this.byFp.get(from)?.store.load()?.outbox.find((x) => x.id === id);
    const ids = m?.parts.map((p) => p.id) ?? [];
    return ids.includes(id) ? ids : [id, ...ids];
  }
}

// ---------------------------------------------------------------------------------------------

function drawFaults(r: Rng): Faults {
  return {
    loss: r.chance(0.2) ? 0 : r.real(0, 0.3),
    duplicate: r.chance(0.3) ? 0 : r.real(0, 0.1),
    reorder: r.chance(0.3) ? 0 : r.real(0, 0.3),
    reorderMs: r.int(20, 500),
    delayMs: r.int(1, 40),
    jitterMs: r.int(0, 40),
  };
}

function weighted<T>(r: Rng, items: ReadonlyArray<readonly [T, number]>): T {
  const total = items.reduce((a, [, w]) => a + w, 0);
  let x = r.next() * total;
  for (const [v, w] of items) {
    if (x < w) return v;
    x -= w;
  }
  return items[0]![0];
}

const FILLER = ['lorem', 'ipsum', 'dolor', 'sit', 'amet', 'peer', 'post', 'é', '€', '😀', 'ß', 'наш'];

/** A text that names its message; long ones need chunking (a few KiB, rarely tens of KiB). */
function makeText(r: Rng, n: number, from: string, long: boolean): string {
  const target = long ? (r.chance(0.05) ? r.int(20_000, 60_000) : r.int(1_500, 12_000)) : r.int(0, 300);
  const words = [`#${n} from ${from}`];
  for (let bytes = Buffer.byteLength(words[0]!); bytes < target; ) {
    const w = r.pick(FILLER);
    words.push(w);
    bytes += 1 + Buffer.byteLength(w);
  }
  return words.join(' ');
}

function latin1(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
}

export type { SentRecord };
