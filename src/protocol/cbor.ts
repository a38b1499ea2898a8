/**
 * CBOR (RFC 8949) for peerpost payloads: encoding through cbor-x, and decoding through cbor-x only
 * after a structural check that admits the deterministic subset the spec allows (docs/PROTOCOL.md,
 * "CBOR subset"): unsigned integers up to 2^53-1, byte strings, UTF-8 text strings, arrays, false,
 * true and null; definite lengths only; every head in its shortest form; nesting at most
 * CBOR_DEPTH_MAX deep; at most CBOR_ITEMS_MAX items. No maps, tags, floats or negative integers.
 * Whatever passes the check is bounded in size and shape, so cbor-x cannot be driven into huge
 * allocations, deep recursion or tag extensions by a hostile datagram.
 */
import { Encoder } from 'cbor-x';

export const CBOR_DEPTH_MAX = 4;
export const CBOR_ITEMS_MAX = 256;

export type CborValue = number | Uint8Array | string | boolean | null | CborValue[];

const encoder = new Encoder({
  // int64AsNumber is honoured by cbor-x but missing from its typings.
  ...({ int64AsNumber: true } as object),
  useRecords: false,
  mapsAsObjects: false,
  tagUint8Array: false,
  variableMapSize: true,
});

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Encode a value of the subset. Integers above 2^32-1 go as BigInt so they stay integers. */
export function cborEncode(value: CborValue): Uint8Array {
  return encoder.encode(prepare(value));
}

function prepare(value: CborValue): unknown {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`CBOR subset has no number ${value}`);
    return value > 0xffffffff ? BigInt(value) : value;
  }
  if (Array.isArray(value)) return value.map(prepare);
  return value;
}

/** Why a byte string is not a CBOR value of the subset, or null when it is one. */
export function cborCheck(bytes: Uint8Array): string | null {
  const state = { pos: 0, items: 0 };
  const reason = checkItem(bytes, state, 0);
  if (reason) return reason;
  if (state.pos !== bytes.length) return 'trailing_bytes';
  return null;
}

interface WalkState {
  pos: number;
  items: number;
}

function readHead(b: Uint8Array, s: WalkState): { major: number; info: number; arg: number } | string {
  if (s.pos >= b.length) return 'truncated';
  const first = b[s.pos++]!;
  const major = first >> 5;
  const info = first & 0x1f;
  // Major type 7 is judged by its initial byte alone: only false, true and null (0xf4-0xf6).
  if (major === 7) return info === 20 || info === 21 || info === 22 ? { major, info, arg: info } : 'cbor_bad_simple';
  if (info < 24) return { major, info, arg: info };
  const size = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : 0;
  if (size === 0) return info === 31 ? 'cbor_indefinite' : 'cbor_reserved';
  if (s.pos + size > b.length) return 'truncated';
  let arg = 0;
  for (let i = 0; i < size; i++) {
    arg = arg * 256 + b[s.pos + i]!;
  }
  s.pos += size;
  if (!Number.isSafeInteger(arg)) return 'cbor_int_range';
  const min = size === 1 ? 24 : size === 2 ? 0x100 : size === 4 ? 0x10000 : 0x100000000;
  if (major !== 7 && arg < min) return 'cbor_not_shortest';
  return { major, info, arg };
}

function checkItem(b: Uint8Array, s: WalkState, depth: number): string | null {
  if (depth > CBOR_DEPTH_MAX) return 'cbor_too_deep';
  if (++s.items > CBOR_ITEMS_MAX) return 'cbor_too_many_items';
  const head = readHead(b, s);
  if (typeof head === 'string') return head;
  switch (head.major) {
    case 0:
      return null;
    case 2:
    case 3: {
      if (head.arg > b.length - s.pos) return 'bad_length';
      if (head.major === 3) {
        try {
          utf8.decode(b.subarray(s.pos, s.pos + head.arg));
        } catch {
          return 'cbor_bad_utf8';
        }
      }
      s.pos += head.arg;
      return null;
    }
    case 4: {
      if (head.arg > b.length - s.pos) return 'bad_length';
      for (let i = 0; i < head.arg; i++) {
        const r = checkItem(b, s, depth + 1);
        if (r) return r;
      }
      return null;
    }
    case 7:
      return head.info === 20 || head.info === 21 || head.info === 22 ? null : 'cbor_bad_simple';
    default:
      return head.major === 6 ? 'cbor_tag' : head.major === 5 ? 'cbor_map' : 'cbor_negative';
  }
}

/**
 * Decode bytes that passed cborCheck. Byte strings come back as Uint8Array. Never throws for
 * checked input; the try block is a last line of defence and reports 'bad_cbor'.
 */
export function cborDecodeChecked(bytes: Uint8Array): { ok: true; value: unknown } | { ok: false; reason: string } {
  const reason = cborCheck(bytes);
  if (reason) return { ok: false, reason };
  try {
    return { ok: true, value: encoder.decode(bytes) as unknown };
  } catch {
    return { ok: false, reason: 'bad_cbor' };
  }
}
