/**
 * Writes the home record vectors (docs/PROTOCOL.md, "Home records") to
 * test/vectors/home-record.json: the identity of test/fixtures/home-v1, fixed peers, seq and time.
 * Ed25519 signatures are deterministic, so running it twice writes the same file.
 * Run: npx tsx scripts/make-home-record-vectors.ts
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { identityFrom } from '../src/identity/store.js';
import { encodeHomeBody, homeSignatureInput, homeTopic, identityPublicKey, signHomeRecord } from '../src/discovery/home-record.js';
import type { HomeRecord } from '../src/core/home.js';

const h = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const sha256 = (s: string): Uint8Array => new Uint8Array(createHash('sha256').update(s).digest());
const dir = new URL('../test/fixtures/home-v1/', import.meta.url);
const identity = identityFrom(readFileSync(new URL('cert.pem', dir)), readFileSync(new URL('key.pem', dir)), 'cert.pem', 'key.pem', Date.parse('2026-12-01T00:00:00Z'));

const record: HomeRecord = {
  fingerprint: identity.fingerprint,
  peers: [
    { host: '198.51.100.7', port: 7777, fingerprint: sha256('peer one certificate') },
    { host: '2001:db8::1', port: 443, fingerprint: sha256('peer two certificate') },
  ],
  seq: 1_780_000_000_000,
  timeMs: 1_780_000_000_123,
};
const body = encodeHomeBody(record);
const value = signHomeRecord(identity, record);
const out = {
  identity: { cert: h(identity.cert), fingerprint: h(identity.fingerprint), publicKey: h(identityPublicKey(identity)) },
  record: {
    fingerprint: h(record.fingerprint),
    peers: record.peers.map((p) => ({ host: p.host, port: p.port, fingerprint: h(p.fingerprint) })),
    seq: record.seq,
    timeMs: record.timeMs,
  },
  body: h(body),
  signatureInput: h(homeSignatureInput(body)),
  value: h(value),
  topic: h(homeTopic(identity.fingerprint)),
};
writeFileSync(new URL('../test/vectors/home-record.json', import.meta.url), JSON.stringify(out, null, 2) + '\n');
console.log(`home record vectors written (value ${value.length} bytes)`);
