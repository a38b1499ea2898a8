/**
 * The embedding Peer: a relay on a UDP socket. It keeps everything in RAM and forgets it on close.
 *
 *   const peer = await Peer.start({ host: '127.0.0.1', port: 7777, home });
 *   peer.address      // '127.0.0.1:7777'
 *   peer.stats()      // registered clients, waiting messages and bytes, datagrams, drops by reason
 *   await peer.close()
 *
 * Event 'summary' (PeerStats) every summaryIntervalMs (default one minute), also logged at info
 * level as one line. Summaries carry counts only, never a fingerprint or an address.
 */
import { EventEmitter } from 'node:events';
import { Peer as PeerMachine, type PeerOptions, type PeerStats } from '../peer/index.js';
import { UdpDriver } from '../net/udp-driver.js';
import { addrKey, silentLogger, type Logger } from '../core/types.js';
import type { Identity } from '../identity/certificate.js';
import { loadOrCreateIdentity, resolveHome } from '../identity/store.js';
import { cryptoRandom } from './host.js';

export const SUMMARY_INTERVAL_MS_DEFAULT = 60_000;

export interface PeerStartOptions extends Omit<PeerOptions, 'identity' | 'random' | 'logger'> {
  /** Bind address (a literal IP); default 127.0.0.1. */
  host?: string;
  /** UDP port; default 7777; 0 picks a free one. */
  port?: number;
  /** The peer's identity; default the one in `home` (created if missing). */
  identity?: Identity;
  /** Home folder for the identity; default $PEERPOST_HOME or ~/.config/peerpost. */
  home?: string;
  logger?: Logger;
  /** One-line summary period; 0 turns it off. */
  summaryIntervalMs?: number;
}

export interface PeerEvents {
  summary: [PeerStats];
}

/** The one-line peer summary (counts only: never a fingerprint or an address). */
export function logPeerSummary(log: Logger, s: PeerStats): void {
  log.info({ ...s }, `peer: ${s.registered} clients, ${s.waitingMessages} waiting messages (${s.waitingBytes} B), ${s.datagramsIn} in / ${s.datagramsOut} out, drops ${JSON.stringify(s.drops)}`);
}

export class Peer extends EventEmitter<PeerEvents> {
  private timer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;

  private constructor(
    readonly identity: Identity,
    private readonly machine: PeerMachine,
    private readonly driver: UdpDriver,
    private readonly log: Logger,
    summaryIntervalMs: number,
  ) {
    super();
    if (summaryIntervalMs > 0) {
      this.timer = setInterval(() => this.summary(), summaryIntervalMs);
      this.timer.unref();
    }
  }

  static async start(opts: PeerStartOptions = {}): Promise<Peer> {
    const { host = '127.0.0.1', port = 7777, identity: given, home, logger = silentLogger, summaryIntervalMs = SUMMARY_INTERVAL_MS_DEFAULT, ...peerOpts } = opts;
    const identity = given ?? (await loadOrCreateIdentity(resolveHome(home))).identity;
    const machine = new PeerMachine({ ...peerOpts, identity, random: cryptoRandom, logger }, Date.now());
    const driver = await UdpDriver.bind(machine, { host, port, logger });
    // Logged once the socket is bound: a port in use fails before any "started" line.
    logger.info({ fingerprint: identity.fingerprintHex, directory: peerOpts.directory === true }, 'peer started');
    return new Peer(identity, machine, driver, logger, summaryIntervalMs);
  }

  /** `host:port` the socket is bound to. */
  get address(): string {
    return addrKey(this.driver.address());
  }

  get fingerprint(): string {
    return this.identity.fingerprintHex;
  }

  stats(): PeerStats {
    return this.machine.stats();
  }

  private summary(): void {
    const s = this.stats();
    logPeerSummary(this.log, s);
    this.emit('summary', s);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.timer) clearInterval(this.timer);
      await this.driver.close();
    })();
    return this.closing;
  }
}
