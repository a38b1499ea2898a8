/**
 * The typed payloads of the Root envelope, one interface per payload type of docs/PROTOCOL.md.
 * Byte fields are Uint8Array; fingerprints are the raw 32 bytes.
 */
import { MsgType } from './constants.js';

export interface OkMsg { type: typeof MsgType.OK }
export interface KeepaliveMsg { type: typeof MsgType.KEEPALIVE }
export interface RegisterAgainMsg { type: typeof MsgType.REGISTER_AGAIN }
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
  padTo?: number;
}

export interface ChallengeMsg {
  type: typeof MsgType.CHALLENGE;
  cookie: Uint8Array;
  peerCert: Uint8Array;
  /** Ed25519 by the peer over LABEL_CHALLENGE || client nonce || cookie. */
  sig: Uint8Array;
}

export interface RegisterProofMsg {
  type: typeof MsgType.REGISTER_PROOF;
  cert: Uint8Array;
  nonce: Uint8Array;
  cookie: Uint8Array;
  /** Ed25519 by the client over LABEL_REGISTER || cookie || peer fingerprint || nonce. */
  sig: Uint8Array;
}

export interface DeliverMsg {
  type: typeof MsgType.DELIVER;
  cookie: Uint8Array;
  to: Uint8Array;
  id: Uint8Array;
  blob: Uint8Array;
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
  | ErrorMsg;
