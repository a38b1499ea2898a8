import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { scrypt as nobleScrypt } from '@noble/hashes/scrypt.js';
import { sha512 as nobleSha512 } from '@noble/hashes/sha2.js';
import { identityCode, identityCodeAsync, IDENTITY_CODE_SALT } from '../src/codes/identity-code.js';
import { formatSafetyNumber, safetyNumber, safetyNumberHalf, SAFETY_NUMBER_ITERATIONS } from '../src/codes/safety-number.js';
import { toHex } from '../src/identity/certificate.js';

const VECTORS = new URL('./vectors/codes.json', import.meta.url);

interface CodeVectors {
  identityCode: { fingerprint: string; code: string }[];
  safetyNumber: { a: string; b: string; number: string; formatted: string }[];
}

const fps = {
  zero: new Uint8Array(32),
  count: Uint8Array.from({ length: 32 }, (_, i) => i),
  sha: new Uint8Array(createHash('sha256').update('peerpost').digest()),
  ff: new Uint8Array(32).fill(0xff),
};
const hex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));

if (process.env.PEERPOST_WRITE_VECTORS === '1') {
  const out: CodeVectors & { description: string } = {
    description: 'identityCode: scrypt N=2^17 r=8 p=1 salt "peerpost/1 identity-code", 8 bytes BE mod 1e6. safetyNumber: Signal-style, SHA-512 x 5200 per side, sorted halves.',
    identityCode: [fps.zero, fps.count, fps.sha].map((fp) => ({ fingerprint: toHex(fp), code: identityCode(fp) })),
    safetyNumber: [[fps.zero, fps.count], [fps.sha, fps.ff], [fps.count, fps.count]].map(([a, b]) => {
      const number = safetyNumber(a!, b!);
      return { a: toHex(a!), b: toHex(b!), number, formatted: formatSafetyNumber(number) };
    }),
  };
  writeFileSync(VECTORS, `${JSON.stringify(out, null, 2)}\n`);
}
const vectors = JSON.parse(readFileSync(VECTORS, 'utf8')) as CodeVectors;

t.test('identityCode known answers, 6 digits', async (t) => {
  t.equal(vectors.identityCode.length, 3);
  for (const v of vectors.identityCode) {
    t.match(v.code, /^\d{6}$/);
    t.equal(identityCode(hex(v.fingerprint)), v.code);
  }
  const codes = new Set(vectors.identityCode.map((v) => v.code));
  t.equal(codes.size, 3, 'different fingerprints, different codes here');
});

t.test('identityCodeAsync agrees, and an independent scrypt (@noble/hashes) agrees', async (t) => {
  const v = vectors.identityCode[1]!;
  t.equal(await identityCodeAsync(hex(v.fingerprint)), v.code);
  const out = nobleScrypt(hex(v.fingerprint), new TextEncoder().encode(IDENTITY_CODE_SALT), { N: 2 ** 17, r: 8, p: 1, dkLen: 8 });
  const n = Buffer.from(out).readBigUInt64BE(0) % 1_000_000n;
  t.equal(n.toString().padStart(6, '0'), v.code);
});

t.test('identityCode guards its input', async (t) => {
  t.throws(() => identityCode(new Uint8Array(31)));
  t.throws(() => identityCodeAsync('x' as unknown as Uint8Array));
});

t.test('safetyNumber known answers: 60 digits, symmetric', async (t) => {
  for (const v of vectors.safetyNumber) {
    t.match(v.number, /^\d{60}$/);
    t.match(v.formatted, /^(\d{5} ){11}\d{5}$/);
    t.equal(safetyNumber(hex(v.a), hex(v.b)), v.number);
    t.equal(safetyNumber(hex(v.b), hex(v.a)), v.number, 'same for both sides');
    t.equal(formatSafetyNumber(v.number), v.formatted);
  }
  const same = vectors.safetyNumber[2]!;
  t.equal(same.number.slice(0, 30), same.number.slice(30));
});

t.test('safetyNumber halves match an independent SHA-512 (@noble/hashes)', async (t) => {
  for (const fp of [fps.zero, fps.sha]) {
    let h = new Uint8Array(0);
    for (let i = 0; i < SAFETY_NUMBER_ITERATIONS; i++) h = nobleSha512(Uint8Array.from([0, 1, ...fp, ...h]));
    let digits = '';
    for (let c = 0; c < 6; c++) digits += (Buffer.from(h).readUIntBE(c * 5, 5) % 100000).toString().padStart(5, '0');
    t.equal(safetyNumberHalf(fp), digits);
  }
  const n = safetyNumber(fps.zero, fps.sha);
  t.ok(n === safetyNumberHalf(fps.zero) + safetyNumberHalf(fps.sha) || n === safetyNumberHalf(fps.sha) + safetyNumberHalf(fps.zero));
  t.ok(n.slice(0, 30) <= n.slice(30), 'halves in sorted order');
});

t.test('one changed fingerprint bit changes the safety number', async (t) => {
  const b = new Uint8Array(fps.sha);
  b[31]! ^= 1;
  t.not(safetyNumber(fps.zero, fps.sha), safetyNumber(fps.zero, b));
  t.throws(() => safetyNumber(fps.zero, new Uint8Array(3)));
});
