/**
 * peerpost: the public API. `Node`, `Peer` and `Client` are the embedding classes (sockets,
 * timers, home folder, events); the sans-I/O state machines they drive are exported as
 * `PeerMachine`, `ClientMachine` and `NodeMachine` for simulators and custom drivers.
 */
export { Node, Peer, Client, Messenger, codesFor } from './api/index.js';
export type { NodeStartOptions, PeerStartOptions, ClientStartOptions, ClientTuning, Codes, MessengerEvents, PeerEvents, VerifyNotice, HistoryOptions } from './api/index.js';

export { Peer as PeerMachine, PEER_DEFAULTS, type PeerOptions, type PeerStats } from './peer/index.js';
export {
  Client as ClientMachine, CLIENT_DEFAULTS, MemoryClientStore, FileClientStore, parseContactAddress,
  type ClientEvent, type ClientOptions, type ClientStats, type ClientStore, type ClientSnapshot,
  type ContactRecord, type DeliveryState, type InboxEntry, type HistoryEntry, type HistoryQuery, type StoreBatch,
} from './client/index.js';
export { SqliteClientStore, openStore, openStoreForReading, backupStore, STORE_FILE_NAME, SCHEMA_VERSION } from './store/index.js';
export { NodeMachine } from './node/node-machine.js';
export { UdpDriver, startPeer, type DatagramMachine, type UdpDriverOptions } from './net/index.js';

export * from './protocol/index.js';
export * from './identity/index.js';
export * from './crypto/index.js';
export * from './codes/index.js';
export * from './core/types.js';
export type { HomePeer, HomeRecord } from './core/home.js';
export * from './discovery/index.js';
export * from './core/errors.js';
