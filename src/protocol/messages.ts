/**
 * The typed payloads of the Root envelope, one interface per payload type of docs/PROTOCOL.md.
 * Byte fields are Uint8Array; fingerprints are the raw 32 bytes.
 */
import { MsgType } from './constants.js';

/**
 * Binary payload: the reference of the request answered, 0, 8 or 16 bytes (nothing, the counter
 * of the SESSION datagram answered, the nonce of the REGISTER_PROOF answered).
 */
export interface OkMsg { type: typeof MsgType.OK; ref: Uint8Array }
/** One flags byte: KEEPALIVE_ANSWER asks for an OK. */
export interface KeepaliveMsg { type: typeof MsgType.KEEPALIVE; answer: boolean }
/** Binary payload: the session id of the SESSION datagram the peer has no session for. */
export interface RegisterAgainMsg { type: typeof MsgType.REGISTER_AGAIN; sessionId: Uint8Array }
export interface PollMsg { type: typeof MsgType.POLL }

/** Binary payload: [cert length u16 BE][cert DER][nonce 16][zero padding]. */
export interface RegisterMsg {
  type: typeof MsgType.REGISTER;
  cert: Uint8Array;
  nonce: Uint8Array;
  /** Encode only: pad the whole datagram to this many bytes (default DATAGRAM_MAX_BYTES). */
  padTo?: number;
}

/** Binary payload: [nonce 16][zero padding]. Asks for a cookie without registering. */
export interface HelloMsg {
  type: typeof MsgType.HELLO;
  nonce: Uint8Array;
  /** Encode only: pad the whole datagram to this many bytes (default HELLO_MIN_BYTES). */
  padTo?: number;
}

export interface ChallengeMsg {
  type: typeof MsgType.CHALLENGE;
  /** The nonce of the REGISTER answered. */
  nonce: Uint8Array;
  cookie: Uint8Array;
  peerCert: Uint8Array;
  /** The peer's X25519 handshake key of the current cookie epoch. */
  peerKey: Uint8Array;
  /** Ed25519 by the peer over LABEL_PEER_KEY || peerKey (made once per epoch). */
  keySig: Uint8Array;
}

export interface RegisterProofMsg {
  type: typeof MsgType.REGISTER_PROOF;
  cert: Uint8Array;
  nonce: Uint8Array;
  cookie: Uint8Array;
  /** The peer's handshake key this proof answers. */
  peerKey: Uint8Array;
  /** The client's fresh X25519 key for this session. */
  clientKey: Uint8Array;
  /** The client's delivery key, sealed under the session's wrap key. */
  wrappedKey: Uint8Array;
  /**
   * Ed25519 by the client over LABEL_REGISTER || cookie || peer fingerprint || nonce || peerKey ||
   * clientKey || wrappedKey.
   */
  sig: Uint8Array;
}

export interface DeliverMsg {
  type: typeof MsgType.DELIVER;
  cookie: Uint8Array;
  to: Uint8Array;
  id: Uint8Array;
  blob: Uint8Array;
  /** A capability the recipient handed the sender: capability id (4) || tag (12). */
  cap?: Uint8Array;
}

/** Answer to HELLO: a cookie, MAC only. */
export interface CookieMsg {
  type: typeof MsgType.COOKIE;
  nonce: Uint8Array;
  cookie: Uint8Array;
}

/**
 * Binary payload: sessionId (8) || counter (u64 BE) || inner datagram (a whole Root envelope of
 * type OK, KEEPALIVE, PUSH, ACK, POLL, DIR_JOIN or ERROR) || tag (16).
 */
export interface SessionMsg {
  type: typeof MsgType.SESSION;
  sessionId: Uint8Array;
  counter: number;
  inner: Message;
  /** Decode only: the bytes the tag covers (everything before it). */
  signed?: Uint8Array;
  tag: Uint8Array;
}

export interface ResultMsg {
  type: typeof MsgType.RESULT;
  id: Uint8Array;
  status: number;
}

export interface PushMsg {
  type: typeof MsgType.PUSH;
  id: Uint8Array;
  blob: Uint8Array;
}

export interface AckMsg {
  type: typeof MsgType.ACK;
  ids: Uint8Array[];
}

export interface CertRequestMsg {
  type: typeof MsgType.CERT_REQUEST;
  cookie: Uint8Array;
  fingerprint: Uint8Array;
}

export interface CertMsg {
  type: typeof MsgType.CERT;
  fingerprint: Uint8Array;
  cert: Uint8Array;
}

export interface DirJoinMsg {
  type: typeof MsgType.DIR_JOIN;
  /** Display name; the empty string leaves the directory. */
  name: string;
}

export interface DirListMsg {
  type: typeof MsgType.DIR_LIST;
  cookie: Uint8Array;
  page: number;
}

export interface DirEntry {
  fingerprint: Uint8Array;
  name: string;
}

export interface DirPageMsg {
  type: typeof MsgType.DIR_PAGE;
  page: number;
  pages: number;
  entries: DirEntry[];
}

export interface ErrorMsg {
  type: typeof MsgType.ERROR;
  code: number;
  /** What the error is about: a message id (16 bytes), a fingerprint (32) or nothing (0). */
  ref: Uint8Array;
  detail: string;
}

export type Message =
  | OkMsg
  | RegisterMsg
  | KeepaliveMsg
  | RegisterAgainMsg
  | HelloMsg
  | ChallengeMsg
  | RegisterProofMsg
  | DeliverMsg
  | ResultMsg
  | PushMsg
  | AckMsg
  | PollMsg
  | CertRequestMsg
  | CertMsg
  | DirJoinMsg
  | DirListMsg
  | DirPageMsg
  | ErrorMsg
  | CookieMsg
  | SessionMsg;

/** Payload types that travel only inside a SESSION datagram. */
export type SessionInner = OkMsg | KeepaliveMsg | PushMsg | AckMsg | PollMsg | DirJoinMsg | ErrorMsg;
