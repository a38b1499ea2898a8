/**
 * The simulator's fixed identities (see make-identities.ts): peers, clients, the attacker and
 * "ghost" contacts that never come online all draw from this one list.
 */
import { readFileSync } from 'node:fs';
import { createPrivateKey } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Identity } from '../../src/identity/certificate.js';

export const IDENTITIES_FILE = fileURLToPath(new URL('./identities.json', import.meta.url));
/** Certificates are valid from here for IDENTITY_VALIDITY_DAYS; simulated time starts inside that. */
export const IDENTITY_NOT_BEFORE_MS = Date.UTC(2025, 0, 1);
export const IDENTITY_VALIDITY_DAYS = 3650;
export const PEERS_MAX = 5;
export const CLIENTS_MAX = 40;
export const GHOSTS_MAX = 2;
/** Throwaway identities the attacker registers and abandons (storage floods from many identities). */
export const SYBILS_MAX = 6;
const ATTACKER_AT = PEERS_MAX + CLIENTS_MAX + GHOSTS_MAX;
/** Peers first, then clients, then ghosts, then the attacker, then its sybils. */
export const IDENTITIES_TOTAL = ATTACKER_AT + 1 + SYBILS_MAX;

export interface IdentityPool {
  peers: Identity[];
  clients: Identity[];
  ghosts: Identity[];
  attacker: Identity;
  sybils: Identity[];
}

let pool: IdentityPool | undefined;

export function identities(): IdentityPool {
  if (pool) return pool;
  const raw = JSON.parse(readFileSync(IDENTITIES_FILE, 'utf8')) as Array<{ cert: string; key: string }>;
  if (raw.length < IDENTITIES_TOTAL) throw new Error(`${IDENTITIES_FILE} holds ${raw.length} identities, ${IDENTITIES_TOTAL} needed`);
  const all = raw.map(
    (r) => new Identity(new Uint8Array(Buffer.from(r.cert, 'hex')), createPrivateKey({ key: Buffer.from(r.key, 'hex'), format: 'der', type: 'pkcs8' })),
  );
  pool = {
    peers: all.slice(0, PEERS_MAX),
    clients: all.slice(PEERS_MAX, PEERS_MAX + CLIENTS_MAX),
    ghosts: all.slice(PEERS_MAX + CLIENTS_MAX, PEERS_MAX + CLIENTS_MAX + GHOSTS_MAX),
    attacker: all[ATTACKER_AT]!,
    sybils: all.slice(ATTACKER_AT + 1, ATTACKER_AT + 1 + SYBILS_MAX),
  };
  return pool;
}
