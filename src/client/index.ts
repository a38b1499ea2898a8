export { Client, HELLO_TRIES_MAX, RECEIPT_TRIES_MAX, RETENTION_INTERVAL_MS } from './client.js';
export { CLIENT_DEFAULTS, type ClientEvent, type ClientOptions, type ClientSettings, type ClientStats, type ClientTimer } from './types.js';
export * from './content.js';
export * from './store.js';
export { MemoryClientStore } from './store-memory.js';
export { FileClientStore, readJsonState, type JsonState } from './store-file.js';
export { parseContactAddress, checkPetname, PETNAME_MAX_CHARS, type ContactAddress } from './contact-address.js';
export { RttEstimator, RTO_INITIAL_MS, RTO_MIN_MS, RTO_MAX_MS } from './rtt.js';
