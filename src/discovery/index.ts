export * from './home-record.js';
export * from './resolver.js';
export { HomeDht, HomePublisher, parseBootstrap, identityKeyPair, DHT_READY_WAIT_MS, DHT_RESOLVE_TIMEOUT_MS, DHT_PUBLISH_TIMEOUT_MS, DHT_CANDIDATES_MAX, DHT_REPUBLISH_INTERVAL_MS, type DhtStatus, type PublishResult, type HomeDhtOptions } from './home-dht.js';
