/**
 * The embedding Node: a peer and a client in one process on one UDP socket. It serves its own
 * clients and is itself a client of its own peer, so its address (`fingerprint@host:port`) is
 * reachable by anyone who can reach the socket.
 *
 *   const node = await Node.start({ host: '127.0.0.1', port: 7777, home: '/tmp/alice' });
 *   console.log(node.address);           // give this to your contacts
 *   node.on('message', (m) => ...);
 */
import { Client as ClientMachine, type ClientEvent } from '../client/index.js';
import { Peer as PeerMachine, type PeerOptions, type PeerStats } from '../peer/index.js';
import { NodeMachine } from '../node/node-machine.js';
import { UdpDriver } from '../net/udp-driver.js';
import { addrKey, silentLogger, type Logger } from '../core/types.js';
import { UsageError } from '../core/errors.js';
import { loadOrCreateIdentity, resolveHome } from '../identity/store.js';
import { EventedMachine, cryptoRandom } from './host.js';
import { lockHome } from './home-lock.js';
import { Messenger } from './messenger.js';
import { parsePeerAddress, type ClientTuning } from './client.js';
import { openHomeStore, storeRelease } from './home-store.js';
import { SUMMARY_INTERVAL_MS_DEFAULT, logPeerSummary } from './peer.js';

export interface NodeStartOptions {
  /** Bind address (literal IP); default 127.0.0.1. */
  host?: string;
  /** UDP port; default 7777. */
  port?: number;
  /** The address others reach this node at, HOST:PORT; default host:port (required when host is 0.0.0.0 or ::). */
  advertise?: string;
  home?: string;
  logger?: Logger;
  peerOptions?: Omit<PeerOptions, 'identity' | 'random' | 'logger'>;
  clientOptions?: ClientTuning;
  /** One-line peer summary period in the log; 0 turns it off. */
  summaryIntervalMs?: number;
}

export class Node extends Messenger {
  private summaryTimer: NodeJS.Timeout | undefined;
  private peerMachine!: PeerMachine;
  private log: Logger = silentLogger;

  static async start(opts: NodeStartOptions = {}): Promise<Node> {
    const host = opts.host ?? '127.0.0.1';
    const port = opts.port ?? 7777;
    if (!opts.advertise && (host === '0.0.0.0' || host === '::')) {
      throw new UsageError('PEERPOST_ADVERTISE_NEEDED', `binding ${host} needs --advertise HOST:PORT, the address others reach this node at`);
    }
    const home = resolveHome(opts.home);
    const { identity } = await loadOrCreateIdentity(home);
    const lock = lockHome(home);
    const logger = opts.logger ?? silentLogger;
    let store: ReturnType<typeof openHomeStore> | undefined;
    try {
      store = openHomeStore(home);
      const peer = new PeerMachine({ ...opts.peerOptions, identity, random: cryptoRandom, logger: logger }, Date.now());
      let self: Node | undefined;
      // The real port is known only after binding, so the client machine is made after the bind.
      let nodeMachine: NodeMachine | undefined;
      const router = {
        handle: (now: number, from: { host: string; port: number }, data: Uint8Array) => nodeMachine?.handle(now, from, data),
        // A user call (send, addContact ...) queues datagrams in the client half; route them here.
        pollTransmit: () => {
          if (!nodeMachine) return undefined;
          const t = nodeMachine.pollTransmit();
          if (t) return t;
          nodeMachine.pump(Date.now());
          return nodeMachine.pollTransmit();
        },
        pollTimeout: () => nodeMachine?.pollTimeout(),
        handleTimeout: (now: number) => nodeMachine?.handleTimeout(now),
        pollEvent: () => nodeMachine?.pollEvent(),
      };
      const evented = new EventedMachine<ClientEvent>(router, (e) => self?.dispatchEvent(e), () => self?.answerHomeRequests());
      const driver = await UdpDriver.bind(evented, { host, port, logger });
      const bound = driver.address();
      logger.info({ fingerprint: identity.fingerprintHex, directory: opts.peerOptions?.directory === true }, 'peer started');
      const selfAddr = opts.advertise ? parsePeerAddress(opts.advertise, '--advertise') : bound;
      let client: ClientMachine;
      try {
        client = new ClientMachine({ ...opts.clientOptions, identity, peer: selfAddr, store, random: cryptoRandom, logger }, Date.now());
      } catch (e) {
        await driver.close();
        throw e;
      }
      nodeMachine = new NodeMachine(peer, client, selfAddr);
      self = new Node(identity, client, evented, driver, storeRelease(lock, store, client, logger), Date.now);
      self.peerMachine = peer;
      self.log = logger;
      const every = opts.summaryIntervalMs ?? SUMMARY_INTERVAL_MS_DEFAULT;
      if (every > 0) {
        self.summaryTimer = setInterval(() => self?.logSummary(), every);
        self.summaryTimer.unref();
      }
      nodeMachine.pump(Date.now());
      driver.wake();
      evented.schedule();
      return self;
    } catch (e) {
      store?.close();
      lock.release();
      throw e;
    }
  }

  /** `host:port` the socket is bound to. */
  get boundAddress(): string {
    return addrKey(this.driver.address());
  }

  peerStats(): PeerStats {
    return this.peerMachine.stats();
  }

  private logSummary(): void {
    logPeerSummary(this.log, this.peerStats());
  }

  protected override async shutdown(): Promise<void> {
    if (this.summaryTimer) clearInterval(this.summaryTimer);
    await super.shutdown();
  }
}
