/**
 * Content kinds and body formats of sealed client messages (the part of docs/PROTOCOL.md that only
 * clients read; peers never look inside a sealed blob). Every body is a CBOR array of the subset of
 * src/protocol/cbor.ts:
 *
 *   TEXT    (1)  [text tstr, group]         group = null | [id bstr16, name tstr, [[fp bstr32, peer tstr], ...]]
 *   RECEIPT (2)  [[id bstr16, ...]]          ids of DELIVERs received (1..RECEIPT_IDS_MAX)
 *   CHUNK   (3)  [message id bstr16, index uint, count uint, inner kind uint, bytes bstr]
 *   VERIFY  (4)  [body bstr]                 opaque, for the safety-code exchange
 *   CARD    (5)  [cert bstr, cap]            the sender's certificate (so the recipient needs no
 *                                            lookup) and cap = null | bstr 36: the capability
 *                                            (capId 4 || capKey 32) the recipient uses to deliver
 *                                            to the sender's peers (src/crypto/session.ts)
 *
 * A long body (over SEAL_BODY_MAX_BYTES) is cut into CHUNK bodies of at most CHUNK_DATA_MAX_BYTES,
 * each sealed and delivered under its own id; the receiver joins them by message id. Decoders never
 * throw: they return null for anything that does not match.
 */
import { cborDecodeChecked, cborEncode, type CborValue } from '../protocol/cbor.js';
import { CAP_ID_BYTES, CAP_KEY_BYTES, CERT_MAX_BYTES, CERT_MIN_BYTES, FINGERPRINT_BYTES, MESSAGE_ID_BYTES } from '../protocol/constants.js';
import { parseAddr } from '../core/types.js';
import { SEAL_BODY_MAX_BYTES } from '../crypto/seal.js';

export const ContentKind = {
  TEXT: 1,
  RECEIPT: 2,
  CHUNK: 3,
  VERIFY: 4,
  CARD: 5,
} as const;
export type ContentKind = (typeof ContentKind)[keyof typeof ContentKind];

/** Longest text a user may send, in UTF-8 bytes (64 KiB). */
export const TEXT_MAX_BYTES = 64 * 1024;
/** Longest encoded body before chunking (text plus group metadata). */
export const BODY_MAX_BYTES = TEXT_MAX_BYTES + 4 * 1024;
/** Most ids in one RECEIPT body (18 bytes each must fit SEAL_BODY_MAX_BYTES). */
export const RECEIPT_IDS_MAX = 40;
/** Room for the CHUNK framing around the data: array head, id, index, count, kind, bstr head. */
export const CHUNK_FRAMING_MAX_BYTES = 1 + 17 + 5 + 5 + 2 + 3;
/** Most data bytes in one CHUNK. */
export const CHUNK_DATA_MAX_BYTES = SEAL_BODY_MAX_BYTES - CHUNK_FRAMING_MAX_BYTES;
/** Most chunks of one message (BODY_MAX_BYTES / CHUNK_DATA_MAX_BYTES, rounded up, with room). */
export const CHUNK_COUNT_MAX = Math.ceil(BODY_MAX_BYTES / CHUNK_DATA_MAX_BYTES);
/** Most members in a group, the sender included. */
export const GROUP_MEMBERS_MAX = 32;
/** Longest group name, in UTF-8 bytes. */
export const GROUP_NAME_MAX_BYTES = 64;
/** Longest VERIFY body. */
export const VERIFY_BODY_MAX_BYTES = 512;

export interface GroupMember {
  /** 64 lowercase hex. */
  readonly fingerprint: string;
  /** host:port of the member's peer. */
  readonly peer: string;
}

export interface GroupInfo {
  /** 32 lowercase hex (16 bytes). */
  readonly id: string;
  readonly name: string;
  readonly members: readonly GroupMember[];
}

export interface TextBody {
  readonly text: string;
  readonly group?: GroupInfo;
}

export interface ChunkBody {
  readonly messageId: Uint8Array;
  readonly index: number;
  readonly count: number;
  readonly innerKind: number;
  readonly data: Uint8Array;
}

const utf8Enc = new TextEncoder();
const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));

export function utf8Length(s: string): number {
  return utf8Enc.encode(s).length;
}

function decodeArray(bytes: Uint8Array): unknown[] | null {
  const d = cborDecodeChecked(bytes);
  return d.ok && Array.isArray(d.value) ? (d.value as unknown[]) : null;
}

export function encodeText(t: TextBody): Uint8Array {
  const group: CborValue = t.group
    ? [unhex(t.group.id), t.group.name, t.group.members.map((m) => [unhex(m.fingerprint), m.peer])]
    : null;
  return cborEncode([t.text, group]);
}

export function decodeText(bytes: Uint8Array): TextBody | null {
  const a = decodeArray(bytes);
  if (!a || a.length !== 2) return null;
  const [text, g] = a;
  if (typeof text !== 'string' || utf8Length(text) > TEXT_MAX_BYTES) return null;
  if (g === null) return { text };
  if (!Array.isArray(g) || g.length !== 3) return null;
  const [id, name, members] = g as unknown[];
  if (!(id instanceof Uint8Array) || id.length !== MESSAGE_ID_BYTES) return null;
  if (typeof name !== 'string' || name.length === 0 || utf8Length(name) > GROUP_NAME_MAX_BYTES) return null;
  if (!Array.isArray(members) || members.length === 0 || members.length > GROUP_MEMBERS_MAX) return null;
  const out: GroupMember[] = [];
  for (const m of members as unknown[]) {
    if (!Array.isArray(m) || m.length !== 2) return null;
    const [fp, peer] = m as unknown[];
    if (!(fp instanceof Uint8Array) || fp.length !== FINGERPRINT_BYTES) return null;
    if (typeof peer !== 'string' || !parseAddr(peer)) return null;
    out.push({ fingerprint: hex(fp), peer });
  }
  return { text, group: { id: hex(id), name, members: out } };
}

export function encodeReceipt(ids: readonly Uint8Array[]): Uint8Array {
  if (ids.length === 0 || ids.length > RECEIPT_IDS_MAX) throw new RangeError(`a receipt carries 1..${RECEIPT_IDS_MAX} ids`);
  return cborEncode([ids.map((i) => i)]);
}

export function decodeReceipt(bytes: Uint8Array): Uint8Array[] | null {
  const a = decodeArray(bytes);
  if (!a || a.length !== 1 || !Array.isArray(a[0])) return null;
  const ids = a[0] as unknown[];
  if (ids.length === 0 || ids.length > RECEIPT_IDS_MAX) return null;
  const out: Uint8Array[] = [];
  for (const id of ids) {
    if (!(id instanceof Uint8Array) || id.length !== MESSAGE_ID_BYTES) return null;
    out.push(new Uint8Array(id));
  }
  return out;
}

export function encodeChunk(c: ChunkBody): Uint8Array {
  return cborEncode([c.messageId, c.index, c.count, c.innerKind, c.data]);
}

export function decodeChunk(bytes: Uint8Array): ChunkBody | null {
  const a = decodeArray(bytes);
  if (!a || a.length !== 5) return null;
  const [messageId, index, count, innerKind, data] = a;
  if (!(messageId instanceof Uint8Array) || messageId.length !== MESSAGE_ID_BYTES) return null;
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 2 || count > CHUNK_COUNT_MAX) return null;
  if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= count) return null;
  if (typeof innerKind !== 'number' || (innerKind !== ContentKind.TEXT && innerKind !== ContentKind.VERIFY)) return null;
  if (!(data instanceof Uint8Array) || data.length === 0 || data.length > CHUNK_DATA_MAX_BYTES) return null;
  return { messageId: new Uint8Array(messageId), index, count, innerKind, data: new Uint8Array(data) };
}

export interface CardBody {
  readonly cert: Uint8Array;
  /** capId (4) || capKey (32), or undefined when the sender gives the recipient none. */
  readonly cap?: Uint8Array;
}

export const CARD_CAP_BYTES = CAP_ID_BYTES + CAP_KEY_BYTES;

export function encodeCard(c: CardBody): Uint8Array {
  return cborEncode([c.cert, c.cap ?? null]);
}

export function decodeCard(bytes: Uint8Array): CardBody | null {
  const a = decodeArray(bytes);
  if (!a || a.length !== 2) return null;
  const [cert, cap] = a;
  if (!(cert instanceof Uint8Array) || cert.length < CERT_MIN_BYTES || cert.length > CERT_MAX_BYTES) return null;
  if (cap === null) return { cert: new Uint8Array(cert) };
  if (!(cap instanceof Uint8Array) || cap.length !== CARD_CAP_BYTES) return null;
  return { cert: new Uint8Array(cert), cap: new Uint8Array(cap) };
}

export function encodeVerify(body: Uint8Array): Uint8Array {
  return cborEncode([body]);
}

export function decodeVerify(bytes: Uint8Array): Uint8Array | null {
  const a = decodeArray(bytes);
  if (!a || a.length !== 1 || !(a[0] instanceof Uint8Array) || a[0].length > VERIFY_BODY_MAX_BYTES) return null;
  return new Uint8Array(a[0]);
}

/** Cut a body into CHUNK_DATA_MAX_BYTES pieces (at least 2 pieces when called). */
export function splitBody(body: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < body.length; i += CHUNK_DATA_MAX_BYTES) out.push(body.subarray(i, i + CHUNK_DATA_MAX_BYTES));
  return out;
}
