/**
 * The simulator's network: endpoints (one per machine) joined by a lossy link with virtual time.
 * Unlike the small test network (test/helpers/vnet.ts) an endpoint can move to a new address (NAT
 * rebinding: its datagrams then come from the new port, and what is sent to the old one is lost),
 * go offline while its process keeps running (its timers fire, its datagrams are lost), or stop
 * (no machine: a process that is not running) and start again with a new machine (a restart).
 *
 * step() runs the earliest event: a datagram arriving or a machine's deadline (a datagram first on
 * a tie). Each machine's deadline is asked once after every call into it and cached, so a step
 * costs one pass over a few dozen numbers. Same seed, same run.
 */
import { TimedHeap } from '../helpers/timed-heap.js';
import { addrKey, type Addr, type Transmit } from '../../src/core/types.js';
import { Rng } from './prng.js';
import type { Faults, Machine } from '../helpers/vnet.js';

export type { Faults, Machine } from '../helpers/vnet.js';

export const CALM: Faults = { loss: 0, duplicate: 0, reorder: 0, reorderMs: 0, delayMs: 5, jitterMs: 0 };

export interface Wire {
  readonly from: Addr;
  readonly to: Addr;
  readonly data: Uint8Array;
}

/** What became of a datagram (for traces). */
export type Fate = 'lost' | 'duplicated' | 'arrived' | 'unroutable';

export class Endpoint {
  key: string;
  /** null: the process is not running. */
  machine: Machine | null;
  /** false: the network is gone; the process (timers) still runs, every datagram is lost. */
  online = true;
  deadline: number | undefined;
  constructor(readonly name: string, public addr: Addr, machine: Machine | null) {
    this.key = addrKey(addr);
    this.machine = machine;
  }
}

export interface NetStats {
  sent: number;
  arrived: number;
  lost: number;
  duplicated: number;
  /** To an address with no running, online machine, or sent while offline. */
  unroutable: number;
  timeouts: number;
  steps: number;
}

interface Flight {
  readonly at: number;
  readonly seq: number;
  readonly w: Wire;
}

export class SimNet {
  now: number;
  faults: Faults;
  readonly stats: NetStats = { sent: 0, arrived: 0, lost: 0, duplicated: 0, unroutable: 0, timeouts: 0, steps: 0 };
  readonly endpoints: Endpoint[] = [];
  /** Sees every datagram a machine sends, before faults apply. */
  onSend: ((w: Wire, from: Endpoint) => void) | undefined;
  /** What became of each copy of a datagram. */
  onFate: ((w: Wire, fate: Fate) => void) | undefined;
  /** After every call into a machine (datagram, timer or user call). */
  afterCall: ((ep: Endpoint) => void) | undefined;
  /** After a machine handled a datagram (and after afterCall). */
  afterHandle: ((ep: Endpoint, w: Wire) => void) | undefined;
  private readonly rng: Rng;
  private readonly byAddr = new Map<string, Endpoint>();
  private readonly heap = new TimedHeap<Flight>();
  private seq = 0;

  constructor(rng: Rng, startMs: number, faults: Faults) {
    this.rng = rng;
    this.now = startMs;
    this.faults = faults;
  }

  add(name: string, addr: Addr, machine: Machine | null): Endpoint {
    const ep = new Endpoint(name, addr, machine);
    if (this.byAddr.has(ep.key)) throw new Error(`address ${ep.key} is taken`);
    this.byAddr.set(ep.key, ep);
    this.endpoints.push(ep);
    this.settle(ep);
    return ep;
  }

  /** Stop (null) or start a machine at the endpoint; what the old one held in RAM is gone. */
  setMachine(ep: Endpoint, machine: Machine | null): void {
    ep.machine = machine;
    this.settle(ep);
  }

  /** NAT rebinding: the endpoint now sends from, and is reached at, `addr`. */
  move(ep: Endpoint, addr: Addr): void {
    const key = addrKey(addr);
    if (this.byAddr.has(key)) throw new Error(`address ${key} is taken`);
    this.byAddr.delete(ep.key);
    ep.addr = addr;
    ep.key = key;
    this.byAddr.set(key, ep);
  }

  setOnline(ep: Endpoint, online: boolean): void {
    ep.online = online;
  }

  /** A user call on a running machine: its datagrams go out, its deadline is asked again. */
  call<M extends Machine>(ep: Endpoint, fn: (m: M) => void): void {
    if (!ep.machine) throw new Error(`${ep.name} is not running`);
    try {
      fn(ep.machine as M);
    } finally {
      this.settle(ep);
    }
  }

  /** Time of the next event, or +Infinity. */
  nextAt(): number {
    let at = this.heap.peek()?.at ?? Number.POSITIVE_INFINITY;
    for (const ep of this.endpoints) if (ep.deadline !== undefined && ep.deadline < at) at = ep.deadline;
    return at;
  }

  /** Run the earliest event if it is due at or before `limitMs`. False when there is none. */
  step(limitMs: number): boolean {
    const flight = this.heap.peek();
    let timer: Endpoint | undefined;
    let timerAt = Number.POSITIVE_INFINITY;
    for (const ep of this.endpoints) {
      if (ep.deadline !== undefined && ep.deadline < timerAt) {
        timerAt = ep.deadline;
        timer = ep;
      }
    }
    const flightAt = flight ? flight.at : Number.POSITIVE_INFINITY;
    const at = Math.min(flightAt, timerAt);
    if (!(at <= limitMs)) return false;
    this.stats.steps++;
    if (at > this.now) this.now = at;
    if (flight && flightAt <= timerAt) {
      this.heap.pop();
      const ep = this.byAddr.get(addrKey(flight.w.to));
      if (!ep || !ep.machine || !ep.online) {
        this.stats.unroutable++;
        this.onFate?.(flight.w, 'unroutable');
        return true;
      }
      this.stats.arrived++;
      this.onFate?.(flight.w, 'arrived');
      ep.machine.handle(this.now, flight.w.from, flight.w.data);
      this.settle(ep);
      this.afterHandle?.(ep, flight.w);
    } else if (timer?.machine) {
      this.stats.timeouts++;
      timer.machine.handleTimeout(this.now);
      this.settle(timer);
    }
    return true;
  }

  get inFlight(): number {
    return this.heap.size;
  }

  /** Take what the machine queued, ask for its deadline, tell the observer. */
  private settle(ep: Endpoint): void {
    const m = ep.machine;
    if (!m) {
      ep.deadline = undefined;
      return;
    }
    for (let t = m.pollTransmit(); t; t = m.pollTransmit()) {
      // Only the attacker sets spoofFrom: a source address that is not its own.
      this.send({ from: (t as { spoofFrom?: Addr }).spoofFrom ?? ep.addr, to: t.to, data: t.data }, ep);
    }
    ep.deadline = m.pollTimeout();
    this.afterCall?.(ep);
  }

  private send(w: Wire, from: Endpoint): void {
    this.stats.sent++;
    this.onSend?.(w, from);
    if (!from.online) {
      this.stats.unroutable++;
      this.onFate?.(w, 'unroutable');
      return;
    }
    const f = this.faults;
    if (f.loss > 0 && this.rng.next() < f.loss) {
      this.stats.lost++;
      this.onFate?.(w, 'lost');
      return;
    }
    let copies = 1;
    if (f.duplicate > 0 && this.rng.next() < f.duplicate) {
      copies = 2;
      this.stats.duplicated++;
      this.onFate?.(w, 'duplicated');
    }
    for (let i = 0; i < copies; i++) {
      let delay = f.delayMs + (f.jitterMs > 0 ? this.rng.next() * f.jitterMs : 0);
      if (f.reorder > 0 && this.rng.next() < f.reorder) delay += this.rng.next() * f.reorderMs;
      this.heap.push({ at: this.now + Math.round(delay), seq: this.seq++, w });
    }
  }
}

