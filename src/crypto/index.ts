export { seal, openSealed, verifySender, SEAL_BODY_MAX_BYTES, SEAL_BUCKETS_BYTES, SEAL_VERSION, SEAL_OVERHEAD_BYTES, SEAL_FROM_PEER_MAX_BYTES, SEAL_KIND_MAX, LABEL_SEAL_KDF, LABEL_SEALED_SIG } from './seal.js';
export type { SealInput, Opened, OpenResult, SealOpenReason } from './seal.js';
export { SEAL_KEY_CACHE_ENTRIES_MAX } from './keys.js';
