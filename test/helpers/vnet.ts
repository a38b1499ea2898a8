/**
 * A small deterministic virtual network with virtual time, for sans-I/O machines (Peer, Client):
 * anything with handle(now, from, data), pollTransmit(), pollTimeout() and handleTimeout(now).
 * Datagrams cross a link with a seeded chance of loss and duplication, a base delay, jitter and a
 * chance of extra delay that reorders them. step() jumps to the next event (a datagram arriving or
 * a machine's deadline), so minutes of protocol time run in milliseconds. Same seed, same run.
 */
import { TimedHeap } from './timed-heap.js';
import type { Addr, Random } from '../../src/core/types.js';
import type { DatagramMachine } from '../../src/net/udp-driver.js';

/** What the network drives: the shape UdpDriver drives. */
export type Machine = DatagramMachine;

export interface Faults {
  /** Probability that a datagram is lost. */
  loss: number;
  /** Probability that a datagram arrives twice. */
  duplicate: number;
  /** Probability that a datagram is held back by up to reorderMs (so later ones overtake it). */
  reorder: number;
  delayMs: number;
  jitterMs: number;
  reorderMs: number;
}

export const NO_FAULTS: Faults = { loss: 0, duplicate: 0, reorder: 0, delayMs: 5, jitterMs: 0, reorderMs: 0 };

/** One datagram on the wire. */
export interface Datagram {
  readonly from: Addr;
  readonly to: Addr;
  readonly data: Uint8Array;
}

/** sfc32, seeded through splitmix32: small, fast, good enough for a simulator. */
export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  constructor(seed: number | string) {
    let s = typeof seed === 'number' ? seed >>> 0 : hashString(seed);
    const next = (): number => {
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    for (let i = 0; i < 12; i++) this.u32();
  }
  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    return this.u32() / 4294967296;
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }
  /** A Random for a machine. */
  random(): Random {
    return (n) => this.bytes(n);
  }
}

function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export function key(a: Addr): string {
  return `${a.host}:${a.port}`;
}

interface Flight {
  readonly at: number;
  readonly seq: number;
  readonly d: Datagram;
}

interface Node {
  readonly addr: Addr;
  machine: Machine;
  up: boolean;
}

export interface VNetStats {
  sent: number;
  delivered: number;
  lost: number;
  duplicated: number;
  /** Sent to an address with no machine, or to/from a node that is down. */
  unroutable: number;
  filtered: number;
  timeouts: number;
}

export class VNet {
  now: number;
  faults: Faults;
  readonly prng: Prng;
  /** Return false to drop a datagram before faults apply (targeted tests). */
  filter: ((d: Datagram, now: number) => boolean) | undefined;
  /** Sees every datagram when it arrives at a live node. */
  onDeliver: ((d: Datagram, now: number) => void) | undefined;
  readonly stats: VNetStats = { sent: 0, delivered: 0, lost: 0, duplicated: 0, unroutable: 0, filtered: 0, timeouts: 0 };
  private readonly nodes = new Map<string, Node>();
  private readonly heap = new TimedHeap<Flight>();
  private seq = 0;

  constructor(opts: { seed: number | string; startMs: number; faults?: Partial<Faults> }) {
    this.now = opts.startMs;
    this.prng = new Prng(opts.seed);
    this.faults = { ...NO_FAULTS, ...opts.faults };
  }

  /** A seeded Random for one machine, independent of the network's own draws. */
  random(label: string): Random {
    return new Prng(`${this.prng.u32()}:${label}`).random();
  }

  add(addr: Addr, machine: Machine): void {
    const k = key(addr);
    if (this.nodes.has(k)) throw new Error(`address ${k} is taken`);
    this.nodes.set(k, { addr, machine, up: true });
  }

  /** Put a new machine at an address (a restart: whatever the old one held in RAM is gone). */
  replace(addr: Addr, machine: Machine): void {
    const n = this.node(addr);
    this.flush(n);
    n.machine = machine;
  }

  /** A node that is down neither sends nor receives, and its timers do not run. */
  setUp(addr: Addr, up: boolean): void {
    this.node(addr).up = up;
  }

  machine<T extends Machine>(addr: Addr): T {
    return this.node(addr).machine as T;
  }

  /** Run one event. False when nothing is left to do. */
  step(limitMs = Number.POSITIVE_INFINITY): boolean {
    this.flushAll();
    const flight = this.heap.peek();
    let timerNode: Node | undefined;
    let timerAt = Number.POSITIVE_INFINITY;
    for (const n of this.nodes.values()) {
      if (!n.up) continue;
      const t = n.machine.pollTimeout();
      if (t !== undefined && t < timerAt) {
        timerAt = t;
        timerNode = n;
      }
    }
    const flightAt = flight ? flight.at : Number.POSITIVE_INFINITY;
    const at = Math.min(flightAt, timerAt);
    if (!Number.isFinite(at) || at > limitMs) return false;
    this.now = Math.max(this.now, at);
    if (flight && flightAt <= timerAt) {
      this.heap.pop();
      const n = this.nodes.get(key(flight.d.to));
      const src = this.nodes.get(key(flight.d.from));
      if (!n || !n.up || (src && !src.up)) {
        this.stats.unroutable++;
      } else {
        this.stats.delivered++;
        this.onDeliver?.(flight.d, this.now);
        n.machine.handle(this.now, flight.d.from, flight.d.data);
        this.flush(n);
      }
    } else if (timerNode) {
      this.stats.timeouts++;
      timerNode.machine.handleTimeout(this.now);
      this.flush(timerNode);
    }
    return true;
  }

  /** Run until `done()` holds or virtual time passes `maxMs` from now. True when done. */
  runUntil(done: () => boolean, maxMs: number, maxSteps = 2_000_000): boolean {
    const limit = this.now + maxMs;
    for (let i = 0; i < maxSteps; i++) {
      if (done()) return true;
      if (!this.step(limit)) {
        this.now = Math.max(this.now, limit);
        return done();
      }
    }
    throw new Error(`vnet: more than ${maxSteps} steps (a machine may be spinning at t=${this.now})`);
  }

  /** Run for `ms` of virtual time. */
  run(ms: number): void {
    this.runUntil(() => false, ms);
  }

  /** Datagrams still on the wire. */
  get inFlight(): number {
    return this.heap.size;
  }

  private node(addr: Addr): Node {
    const n = this.nodes.get(key(addr));
    if (!n) throw new Error(`no node at ${key(addr)}`);
    return n;
  }

  /** Take what every machine queued (after user calls made outside step()). */
  flushAll(): void {
    for (const n of this.nodes.values()) this.flush(n);
  }

  private flush(n: Node): void {
    for (let t = n.machine.pollTransmit(); t; t = n.machine.pollTransmit()) {
      if (!n.up) continue;
      this.send({ from: n.addr, to: t.to, data: t.data });
    }
  }

  private send(d: Datagram): void {
    this.stats.sent++;
    if (this.filter && !this.filter(d, this.now)) {
      this.stats.filtered++;
      return;
    }
    const f = this.faults;
    if (this.prng.next() < f.loss) {
      this.stats.lost++;
      return;
    }
    const copies = this.prng.next() < f.duplicate ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    for (let i = 0; i < copies; i++) {
      let delay = f.delayMs + this.prng.next() * f.jitterMs;
      if (this.prng.next() < f.reorder) delay += this.prng.next() * f.reorderMs;
      this.heap.push({ at: this.now + Math.round(delay), seq: this.seq++, d });
    }
  }
}

