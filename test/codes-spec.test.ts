/**
 * The safety number and the identity code computed from the written spec alone (docs/SECURITY.md,
 * "Safety numbers and identity codes, byte-exact"), with node:crypto and no code from src/codes,
 * checked against the vectors in test/vectors/codes-spec.json and against src/codes.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { createHash, scryptSync } from 'node:crypto';
import { formatSafetyNumber, safetyNumber, safetyNumberHalf } from '../src/codes/safety-number.js';
import { identityCode } from '../src/codes/identity-code.js';

interface Half {
  fingerprint: string;
  firstInput: string;
  h1: string;
  h2: string;
  h5200: string;
  first30: string;
  chunks: Array<{ bytes: string; value: number; mod: string }>;
  digits: string;
}
const V = JSON.parse(readFileSync(new URL('./vectors/codes-spec.json', import.meta.url), 'utf8')) as {
  safetyNumber: { a: Half; b: Half; number: string; formatted: string; sortedFirst: 'a' | 'b' };
  identityCode: Array<{ fingerprint: string; scryptOutput: string; uint64: string; code: string }>;
};

/** The spec, step by step: h_0 empty; h_i = SHA-512(0x0001 || fp || h_{i-1}) for i = 1..5200. */
function specHalf(fp: Buffer): Half {
  const version = Buffer.from([0x00, 0x01]);
  let h = Buffer.alloc(0);
  const kept: Record<number, string> = {};
  for (let i = 1; i <= 5200; i++) {
    h = createHash('sha512').update(version).update(fp).update(h).digest();
    kept[i] = h.toString('hex');
  }
  const chunks = [0, 1, 2, 3, 4, 5].map((c) => {
    const b = h.subarray(5 * c, 5 * c + 5);
    const value = b.readUIntBE(0, 5);
    return { bytes: b.toString('hex'), value, mod: String(value % 100000).padStart(5, '0') };
  });
  return {
    fingerprint: fp.toString('hex'), firstInput: Buffer.concat([version, fp]).toString('hex'),
    h1: kept[1]!, h2: kept[2]!, h5200: kept[5200]!, first30: h.subarray(0, 30).toString('hex'), chunks, digits: chunks.map((c) => c.mod).join(''),
  };
}

t.test('safety number: every intermediate value from the spec matches the vectors and src/codes', async (t) => {
  const sn = V.safetyNumber;
  for (const side of ['a', 'b'] as const) {
    const fp = Buffer.from(sn[side].fingerprint, 'hex');
    t.same(specHalf(fp), sn[side], `half ${side}`);
    t.equal(safetyNumberHalf(fp), sn[side].digits);
  }
  const sorted = sn.a.digits <= sn.b.digits ? sn.a.digits + sn.b.digits : sn.b.digits + sn.a.digits;
  t.equal(sorted, sn.number, 'the smaller half (as a digit string) first');
  t.equal(sn.sortedFirst, sn.a.digits <= sn.b.digits ? 'a' : 'b');
  const a = Buffer.from(sn.a.fingerprint, 'hex');
  const b = Buffer.from(sn.b.fingerprint, 'hex');
  t.equal(safetyNumber(a, b), sn.number);
  t.equal(safetyNumber(b, a), sn.number, 'the same from either side');
  t.equal(formatSafetyNumber(sn.number), sn.formatted);
});

t.test('identity code: scrypt over the 32 raw fingerprint bytes, 8 output bytes, mod 10^6', async (t) => {
  for (const v of V.identityCode) {
    const fp = Buffer.from(v.fingerprint, 'hex');
    const out = scryptSync(fp, Buffer.from('peerpost/1 identity-code', 'ascii'), 8, { N: 131072, r: 8, p: 1, maxmem: 256 * 1024 * 1024 });
    t.equal(out.toString('hex'), v.scryptOutput);
    t.equal(out.readBigUInt64BE(0).toString(), v.uint64);
    t.equal(String(out.readBigUInt64BE(0) % 1000000n).padStart(6, '0'), v.code);
    t.equal(identityCode(fp), v.code, 'src/codes agrees');
    // Not the hex text of the fingerprint: that gives another code.
    const fromHex = scryptSync(Buffer.from(v.fingerprint, 'ascii'), 'peerpost/1 identity-code', 8, { N: 131072, r: 8, p: 1, maxmem: 256 * 1024 * 1024 });
    t.not(String(fromHex.readBigUInt64BE(0) % 1000000n).padStart(6, '0'), v.code);
  }
});
