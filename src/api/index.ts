export { Peer, type PeerStartOptions, type PeerEvents, SUMMARY_INTERVAL_MS_DEFAULT } from './peer.js';
export { Client, type ClientStartOptions, type ClientTuning, parsePeerAddress } from './client.js';
export { Node, type NodeStartOptions } from './node.js';
export { Messenger, codesFor, checkMessageId, HISTORY_LIMIT_DEFAULT, type Codes, type MessengerEvents, type HistoryOptions } from './messenger.js';
export { VERIFY_SESSIONS_MAX, type VerifyNotice } from './verify-manager.js';
export { lockHome, LOCK_FILE_NAME } from './home-lock.js';
