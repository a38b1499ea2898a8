/**
 * Writes test/sim/identities.json: a fixed set of Ed25519 identities (certificate DER and PKCS#8
 * key, hex) for the simulator, so that a seed replays the same run in any process (fingerprints,
 * signatures and sealed blobs are then functions of the seed alone). Run once:
 *   node --import tsx test/sim/make-identities.ts
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { generateIdentity } from '../../src/identity/certificate.js';
import { IDENTITIES_FILE, IDENTITY_NOT_BEFORE_MS, IDENTITY_VALIDITY_DAYS, IDENTITIES_TOTAL } from './identities.js';

// Identities already in the file are kept (seeds keep replaying the same runs); missing ones are added.
const out: Array<{ cert: string; key: string }> = existsSync(IDENTITIES_FILE) ? JSON.parse(readFileSync(IDENTITIES_FILE, 'utf8')) : [];
for (let i = out.length; i < IDENTITIES_TOTAL; i++) {
  const id = await generateIdentity({ commonName: `sim-${i}`, notBefore: new Date(IDENTITY_NOT_BEFORE_MS), validityDays: IDENTITY_VALIDITY_DAYS });
  out.push({
    cert: Buffer.from(id.cert).toString('hex'),
    key: id.privateKey.export({ format: 'der', type: 'pkcs8' }).toString('hex'),
  });
}
writeFileSync(IDENTITIES_FILE, JSON.stringify(out, null, 0).replaceAll('},{', '},\n{') + '\n');
console.log(`wrote ${out.length} identities to ${IDENTITIES_FILE}`);
