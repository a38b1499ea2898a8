/**
 * Wire constants of the peerpost protocol, version 2. docs/PROTOCOL.md is the normative text;
 * every number here appears there with the same name.
 */

/** The only protocol version this implementation speaks (first byte of every datagram). */
export const PROTOCOL_VERSION = 2;

/** No datagram, in either direction, is longer than this. */
export const DATAGRAM_MAX_BYTES = 1200;

/** Size of the Root envelope header: version (1 byte) and payload type (1 byte). */
export const ENVELOPE_HEADER_BYTES = 2;

/** A certificate fingerprint on the wire: the raw SHA-256 of the certificate's DER. */
export const FINGERPRINT_BYTES = 32;

/** A registration or HELLO nonce. */
export const NONCE_BYTES = 16;

/** A message id, chosen at random by the sender. */
export const MESSAGE_ID_BYTES = 16;

/** An address-validation cookie: epoch (uint32 big-endian) followed by a 16-byte MAC. */
export const COOKIE_BYTES = 20;

/** An Ed25519 signature. */
export const SIGNATURE_BYTES = 64;

/** Smallest and largest certificate DER accepted in REGISTER, REGISTER_PROOF and CERT. */
export const CERT_MIN_BYTES = 100;
export const CERT_MAX_BYTES = 800;

/** Most message ids one ACK may carry. */
export const ACK_IDS_MAX = 32;

/** Longest directory display name, in UTF-8 bytes. */
export const DIRECTORY_NAME_MAX_BYTES = 32;

/** Most entries in one DIR_PAGE. */
export const DIRECTORY_PAGE_ENTRIES_MAX = 16;

/** Longest ERROR detail text, in UTF-8 bytes. */
export const ERROR_DETAIL_MAX_BYTES = 96;

/** Most bytes of sealed blob in DELIVER or PUSH (the rest of the 1200 goes to the framing). */
export const BLOB_MAX_BYTES = 1100;

/** Domain-separation labels of the handshake (ASCII, no terminator). */
export const LABEL_PEER_KEY = 'peerpost/2 peer-key';
export const LABEL_REGISTER = 'peerpost/2 register';
export const LABEL_SESSION = 'peerpost/2 session';
export const LABEL_DELIVERY_KEY = 'peerpost/2 delivery-key';
export const LABEL_CAP_ID = 'peerpost/2 cap-id';
export const LABEL_CAP_KEY = 'peerpost/2 cap-key';
export const LABEL_CAP_TAG = 'peerpost/2 cap-tag';

/** An X25519 public key (the peer's handshake key, the client's session key). */
export const X25519_KEY_BYTES = 32;

/** The client's delivery key, as sent to its peer at registration: sealed with ChaCha20-Poly1305. */
export const DELIVERY_KEY_BYTES = 32;
export const WRAPPED_DELIVERY_KEY_BYTES = DELIVERY_KEY_BYTES + 16;

/** A session id (chosen by the key schedule), the session counter and the session MAC. */
export const SESSION_ID_BYTES = 8;
export const SESSION_COUNTER_BYTES = 8;
export const SESSION_TAG_BYTES = 16;
/** sessionId + counter + tag around the inner datagram of a SESSION. */
export const SESSION_OVERHEAD_BYTES = SESSION_ID_BYTES + SESSION_COUNTER_BYTES + SESSION_TAG_BYTES;

/** A delivery capability in DELIVER: capability id (4) || tag (12). */
export const CAP_ID_BYTES = 4;
export const CAP_TAG_BYTES = 12;
export const CAP_BYTES = CAP_ID_BYTES + CAP_TAG_BYTES;
/** The secret a client hands a contact with a capability id: the key of its tags. */
export const CAP_KEY_BYTES = 32;

/** KEEPALIVE flag: the client wants an OK back. */
export const KEEPALIVE_ANSWER = 1;

/** Smallest HELLO a peer answers (its COOKIE answer is never larger). */
export const HELLO_MIN_BYTES = 64;

/** Root payload types. Numbers 1 and 2 keep the numbering of the original notes. */
export const MsgType = {
  OK: 1,
  REGISTER: 2,
  KEEPALIVE: 3,
  REGISTER_AGAIN: 4,
  HELLO: 5,
  CHALLENGE: 6,
  REGISTER_PROOF: 7,
  DELIVER: 8,
  RESULT: 9,
  PUSH: 10,
  ACK: 11,
  POLL: 12,
  CERT_REQUEST: 13,
  CERT: 14,
  DIR_JOIN: 15,
  DIR_LIST: 16,
  DIR_PAGE: 17,
  ERROR: 18,
  COOKIE: 19,
  SESSION: 20,
} as const;
export type MsgType = (typeof MsgType)[keyof typeof MsgType];

export const MSG_TYPE_NAMES: Readonly<Record<number, string>> = Object.freeze(
  Object.fromEntries(Object.entries(MsgType).map(([k, v]) => [v, k])),
);

/** Status numbers in RESULT, after the "200" and "300" answers of the original chat protocol. */
export const DeliveryStatus = {
  /** Pushed to the recipient, who acknowledged it. */
  DELIVERED: 200,
  /** Kept in the recipient's mailbox until it registers, polls or acknowledges a push. */
  HELD: 300,
} as const;
export type DeliveryStatus = (typeof DeliveryStatus)[keyof typeof DeliveryStatus];

/** Error numbers carried by ERROR. Stable: never renumbered, only added to. */
export const WireError = {
  /** The cookie is missing, forged, for another address, or too old: ask for a new one. */
  BAD_COOKIE: 1,
  /**
   * REGISTER_PROOF: the certificate is not well-formed DER, not X.509 v3, not Ed25519, or out of
   * its validity period. CERT_REQUEST: the registered certificate fails its self-signature.
   */
  BAD_CERT: 2,
  /** A handshake signature does not verify with the certificate's key. */
  BAD_SIGNATURE: 3,
  /** This registration proof was already used. */
  REPLAY: 4,
  /** The recipient's mailbox holds its maximum number of messages. */
  MAILBOX_FULL: 5,
  /** This sender address already has the maximum of un-acknowledged messages for this recipient. */
  TOO_MANY_UNACKED: 6,
  /** The peer's global budget for waiting messages is spent. */
  STORAGE_FULL: 7,
  /** The registry holds its maximum number of clients. */
  REGISTRY_FULL: 8,
  /** Too many requests from this IP address; retry later. */
  RATE_LIMITED: 9,
  /** No registered client has this fingerprint. */
  NOT_FOUND: 10,
  /** This peer runs without a directory. */
  DIRECTORY_DISABLED: 11,
  /** The request is well formed but not acceptable (for example an empty or oversized name). */
  BAD_REQUEST: 12,
  /** A message id was reused with a different blob. */
  ID_CONFLICT: 13,
  /** The peer is under load and does not take new registrations now: retry later. */
  BUSY: 14,
} as const;
export type WireError = (typeof WireError)[keyof typeof WireError];

export const WIRE_ERROR_NAMES: Readonly<Record<number, string>> = Object.freeze(
  Object.fromEntries(Object.entries(WireError).map(([k, v]) => [v, k])),
);
