/**
 * A peer on a UDP socket: the Peer state machine driven by a UdpDriver, with randomness from
 * node:crypto and Date.now() as the clock.
 */
import { randomBytes } from 'node:crypto';
import { Peer, type PeerOptions } from '../peer/index.js';
import type { Addr } from '../core/types.js';
import { UdpDriver, type UdpDriverOptions } from './udp-driver.js';

export interface StartPeerOptions extends Omit<PeerOptions, 'random'>, Pick<UdpDriverOptions, 'host' | 'port' | 'clock' | 'socketBufferBytes'> {
  /** Default: node:crypto randomBytes. */
  random?: PeerOptions['random'];
}

export interface RunningPeer {
  peer: Peer;
  driver: UdpDriver;
  /** The bound address (the real port when 0 was asked for). */
  address: Addr;
  close(): Promise<void>;
}

export async function startPeer(opts: StartPeerOptions): Promise<RunningPeer> {
  const { host, port, clock = Date.now, socketBufferBytes, random, ...peerOpts } = opts;
  const peer = new Peer({ ...peerOpts, random: random ?? ((n) => new Uint8Array(randomBytes(n))) }, clock());
  const driver = await UdpDriver.bind(peer, { host, port, clock, socketBufferBytes, logger: opts.logger });
  return { peer, driver, address: driver.address(), close: () => driver.close() };
}
