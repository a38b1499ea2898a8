export { seal, openSealed, verifySender, SEAL_BODY_MAX_BYTES, SEAL_BUCKETS_BYTES, SEAL_VERSION, SEAL_OVERHEAD_BYTES, SEAL_FROM_PEER_MAX_BYTES, SEAL_KIND_MAX, LABEL_SEAL_KDF, LABEL_SEALED_SIG } from './seal.js';
export type { SealInput, Opened, OpenResult, SealOpenReason } from './seal.js';
export { SEAL_KEY_CACHE_ENTRIES_MAX } from './keys.js';
export {
  acceptRatchet, ratchetCanSend, ratchetDecrypt, ratchetEncrypt, startRatchet, RATCHET_VERSION, RATCHET_PAYLOAD_MAX_BYTES,
  RATCHET_SKIP_PER_MESSAGE_MAX, RATCHET_SKIPPED_KEYS_MAX, RATCHET_SKIPPED_KEY_AGE_MAX_MS,
} from './ratchet.js';
export type { RatchetState, RatchetOpenResult, RatchetOpenReason } from './ratchet.js';
export { decodeRatchetState, encodeRatchetState, RATCHET_STATE_VERSION } from './ratchet-state.js';
