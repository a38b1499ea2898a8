/**
 * Contact addresses, `fp@host:port`: the 64 lowercase hex SHA-256 fingerprint of the contact's
 * certificate, '@', and the address of the contact's peer. Parsed strictly; every refusal is a
 * UsageError with a stable code.
 */
import { UsageError } from '../core/errors.js';
import { addrKey, parseAddr, type Addr } from '../core/types.js';

export interface ContactAddress {
  readonly fingerprint: string;
  readonly peer: Addr;
  /** addrKey(peer). */
  readonly peerKey: string;
}

/** Longest petname, in characters. */
export const PETNAME_MAX_CHARS = 32;
const PETNAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export function parseContactAddress(text: string): ContactAddress {
  if (typeof text !== 'string') throw new UsageError('PEERPOST_CONTACT_ADDRESS', 'contact address must be a string fp@host:port');
  const at = text.indexOf('@');
  if (at < 0 || text.indexOf('@', at + 1) >= 0) {
    throw new UsageError('PEERPOST_CONTACT_ADDRESS', `contact address "${text}" must be fp@host:port with exactly one @`);
  }
  const fp = text.slice(0, at);
  if (!/^[0-9a-f]{64}$/.test(fp)) {
    throw new UsageError('PEERPOST_CONTACT_FINGERPRINT', `fingerprint "${fp}" must be 64 lowercase hex characters`);
  }
  const peer = parseAddr(text.slice(at + 1));
  if (!peer) throw new UsageError('PEERPOST_CONTACT_PEER', `peer address "${text.slice(at + 1)}" must be host:port with a port 1..65535`);
  return { fingerprint: fp, peer, peerKey: addrKey(peer) };
}

export function checkPetname(name: string): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > PETNAME_MAX_CHARS || !PETNAME_RE.test(name) || /^[0-9a-f]{64}$/.test(name)) {
    throw new UsageError(
      'PEERPOST_PETNAME',
      `petname "${String(name)}" must be 1..${PETNAME_MAX_CHARS} letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
  }
  return name;
}
