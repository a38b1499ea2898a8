export { Peer, PEER_DEFAULTS, TIMEOUT_BATCH_MAX, type PeerOptions, type PeerStats } from './peer.js';
export { type RateLimitOptions } from './rate-limit.js';
export { MESSAGE_OVERHEAD_BYTES, WAITERS_PER_MESSAGE_MAX } from './mailbox.js';
