/**
 * A tiny in-memory network with virtual time for sans-I/O machines (peer, raw clients). Datagrams
 * are delivered in FIFO order at the current virtual time; advance() jumps from deadline to
 * deadline, so timeouts of seconds or hours run in microseconds. Every datagram is counted by
 * source and destination, which is what the amplification tests measure.
 */
import { createHash } from 'node:crypto';
import { addrKey, type Addr, type Random } from '../../src/core/types.js';
import { Peer, type PeerOptions } from '../../src/peer/index.js';
import { generateIdentity, type Identity } from '../../src/identity/certificate.js';
import { RawClient } from './raw-client.js';
import type { DatagramMachine } from '../../src/net/udp-driver.js';

/** What the link drives: the shape UdpDriver drives. */
export type Machine = DatagramMachine;

export interface Datagram {
  from: Addr;
  to: Addr;
  data: Uint8Array;
}

export class Link {
  private readonly nodes = new Map<string, Machine>();
  private readonly queue: Datagram[] = [];
  /** Bytes and datagrams sent to each address (addrKey), delivered or not. */
  readonly bytesTo = new Map<string, number>();
  readonly bytesFrom = new Map<string, number>();
  /** Datagrams to addresses where no machine listens. */
  unrouted = 0;
  /** Return false to lose a datagram. */
  filter: ((d: Datagram) => boolean) | undefined;
  /** Keep every datagram when true (for inspection). */
  record = false;
  readonly recorded: Datagram[] = [];

  constructor(public now: number) {}

  add(addr: Addr, m: Machine): Machine {
    this.nodes.set(addrKey(addr), m);
    return m;
  }

  remove(addr: Addr): void {
    this.nodes.delete(addrKey(addr));
  }

  /** Put raw bytes on the wire from any (possibly spoofed) address and deliver everything. */
  inject(from: Addr, to: Addr, data: Uint8Array): void {
    this.enqueue({ from, to, data });
    this.flush();
  }

  /** Collect what every machine wants to send, deliver it, repeat until quiet. */
  flush(datagramsMax = 10_000_000): void {
    for (let n = 0; n < datagramsMax; n++) {
      for (const [k, m] of this.nodes) this.drain(k, m);
      const d = this.queue.shift();
      if (!d) return;
      if (this.filter && !this.filter(d)) continue;
      const m = this.nodes.get(addrKey(d.to));
      if (!m) {
        this.unrouted++;
        continue;
      }
      m.handle(this.now, d.from, d.data);
    }
    throw new Error('link did not settle');
  }

  /** Move virtual time forward by `ms`, firing every deadline on the way in order. */
  advance(ms: number): void {
    const target = this.now + ms;
    for (;;) {
      this.flush();
      let next: number | undefined;
      for (const m of this.nodes.values()) {
        const t = m.pollTimeout();
        if (t !== undefined && (next === undefined || t < next)) next = t;
      }
      if (next === undefined || next > target) break;
      this.now = Math.max(this.now, next);
      for (const m of this.nodes.values()) {
        const t = m.pollTimeout();
        if (t !== undefined && t <= this.now) m.handleTimeout(this.now);
      }
    }
    this.now = target;
    this.flush();
  }

  sentTo(a: Addr): number {
    return this.bytesTo.get(addrKey(a)) ?? 0;
  }

  private drain(from: string, m: Machine): void {
    for (let t = m.pollTransmit(); t; t = m.pollTransmit()) {
      const src = parseKey(from);
      this.enqueue({ from: src, to: t.to, data: t.data });
    }
  }

  private enqueue(d: Datagram): void {
    const to = addrKey(d.to);
    const fr = addrKey(d.from);
    this.bytesTo.set(to, (this.bytesTo.get(to) ?? 0) + d.data.length);
    this.bytesFrom.set(fr, (this.bytesFrom.get(fr) ?? 0) + d.data.length);
    if (this.record) this.recorded.push(d);
    this.queue.push(d);
  }
}

function parseKey(k: string): Addr {
  const i = k.lastIndexOf(':');
  const host = k.startsWith('[') ? k.slice(1, i - 1) : k.slice(0, i);
  return { host, port: Number(k.slice(i + 1)) };
}

// ---------------------------------------------------------------------------------------------
// A peer with raw clients on a link: the fixture of the peer tests.


/** A deterministic Random: SHA-256 in counter mode over a seed. */
export function seededRandom(seed: number): Random {
  let counter = 0;
  return (n: number) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 32) {
      const block = createHash('sha256').update(`${seed}/${counter++}`).digest();
      out.set(block.subarray(0, Math.min(32, n - i)), i);
    }
    return out;
  };
}

const identities: Identity[] = [];
/** The i-th test identity, generated once per process. */
export async function identityNo(i: number): Promise<Identity> {
  while (identities.length <= i) identities.push(await generateIdentity({ commonName: `test ${identities.length}` }));
  return identities[i]!;
}

export const PEER_ADDR: Addr = { host: '10.0.0.1', port: 7777 };
export const clientAddr = (i: number): Addr => ({ host: `10.1.${i >> 8}.${i & 255}`, port: 40000 + i });

export interface World {
  link: Link;
  peer: Peer;
  clients: RawClient[];
}

/** A peer at PEER_ADDR and `n` raw clients at clientAddr(i), none registered yet. */
export async function makeWorld(n: number, opts: Partial<PeerOptions> = {}, start = Date.now()): Promise<World> {
  const link = new Link(start);
  const peer = new Peer({ identity: await identityNo(0), random: seededRandom(1), ...opts }, start);
  link.add(PEER_ADDR, peer);
  const clients: RawClient[] = [];
  for (let i = 0; i < n; i++) {
    const c = new RawClient(await identityNo(i + 1));
    link.add(clientAddr(i), c);
    clients.push(c);
  }
  return { link, peer, clients };
}
