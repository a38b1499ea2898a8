/**
 * The embedding Client: a client of a peer elsewhere, on its own UDP socket, with its identity and
 * its state (contacts, outbox, history) in a home folder (src/store/: client.db).
 *
 *   const alice = await Client.start({ peer: '127.0.0.1:7777', home: '/tmp/alice' });
 *   alice.on('message', (m) => console.log(m.fromName ?? m.from, m.text));
 *   alice.addContact('<fingerprint>@127.0.0.1:7777', 'bob');
 *   const [id] = alice.send('bob', 'hello');
 *   alice.on('delivery', (d) => console.log(d.id, d.state));
 *   await alice.close();
 */
import { Client as ClientMachine, type ClientEvent, type ClientOptions } from '../client/index.js';
import { UdpDriver } from '../net/udp-driver.js';
import { silentLogger, type Logger } from '../core/types.js';
import { loadOrCreateIdentity, resolveHome } from '../identity/store.js';
import { EventedMachine, cryptoRandom } from './host.js';
import { parsePeerAddress } from './peer-address.js';
import { lockHome } from './home-lock.js';
import { Messenger } from './messenger.js';
import { openHomeStore, storeRelease } from './home-store.js';

export type ClientTuning = Omit<ClientOptions, 'identity' | 'peer' | 'store' | 'random' | 'logger'>;

export interface ClientStartOptions {
  /** Our own peer, `host:port` (literal IP): the first of our home peers. */
  peer: string;
  /** Further home peers, `host:port` each, registered with at the same time (in the order senders try them). */
  morePeers?: readonly string[];
  /** Home folder: identity, contacts, outbox, history. Default $PEERPOST_HOME or ~/.config/peerpost. */
  home?: string;
  /** Local bind address; default 0.0.0.0 (:: when the peer is IPv6). */
  host?: string;
  /** Local port; default 0 (any). */
  port?: number;
  logger?: Logger;
  /** Client tuning: keepaliveIntervalMs, messageTtlMs and the other ClientOptions. */
  options?: ClientTuning;
}

export { parsePeerAddress };

export class Client extends Messenger {
  static async start(opts: ClientStartOptions): Promise<Client> {
    const peer = parsePeerAddress(opts.peer);
    const home = resolveHome(opts.home);
    const { identity } = await loadOrCreateIdentity(home);
    const lock = lockHome(home);
    const logger = opts.logger ?? silentLogger;
    let store: ReturnType<typeof openHomeStore> | undefined;
    try {
      store = openHomeStore(home);
      const morePeers = (opts.morePeers ?? []).map((p) => parsePeerAddress(p));
      const machine = new ClientMachine({ ...opts.options, identity, peer, morePeers, store, random: cryptoRandom, logger }, Date.now());
      let self: Client | undefined;
      const evented = new EventedMachine<ClientEvent>(machine, (e) => self?.dispatchEvent(e), () => self?.answerHomeRequests());
      const host = opts.host ?? (peer.host.includes(':') ? '::' : '0.0.0.0');
      const driver = await UdpDriver.bind(evented, { host, port: opts.port ?? 0, logger });
      self = new Client(identity, machine, evented, driver, storeRelease(lock, store, machine, logger), Date.now);
      evented.schedule();
      return self;
    } catch (e) {
      store?.close();
      lock.release();
      throw e;
    }
  }
}
