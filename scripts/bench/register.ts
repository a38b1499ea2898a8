/**
 * Registration load: `concurrency` sockets, each running full registrations of protocol 2
 * (REGISTER -> CHALLENGE -> REGISTER_PROOF -> OK in the new session, its MAC checked) back to back with the next certificate of a range, so every
 * registration in a pass is a distinct real certificate. Also a one-core breakdown of what the
 * peer spends on one registration, measured in this process with the same calls, and of the
 * certificate checks it makes once per certificate before serving it.
 */
import { X509Certificate, randomBytes, sign, verify, hash, type KeyObject } from 'node:crypto';
import { LABEL_REGISTER, MsgType } from '../../src/protocol/constants.js';
import { decode, encode } from '../../src/protocol/codec.js';
import { checkCertificate, readCertificateKey } from '../../src/identity/certificate.js';
import type { Addr } from '../../src/core/types.js';
import { deriveSession, unwrapDeliveryKey, wrapDeliveryKey, x25519, x25519KeyPair, type SessionKeys } from '../../src/crypto/session.js';
import { Endpoint, isRegistrationOk, proveRegistration, type Registered } from './endpoint.js';
import { certAt, privateKeyAt, type CertSet } from './certs.js';

const LABEL_REGISTER_BYTES = Buffer.from(LABEL_REGISTER, 'ascii');

export interface RegistrationRun {
  registrations: number;
  refused: number;
  perS: number;
  p50Us: number;
  p99Us: number;
  generatorCpuPct: number;
}

/** The private keys of certificates [first, first + count), for registrationRun. */
export function registrationKeys(certs: CertSet, first: number, count: number): KeyObject[] {
  const keys: KeyObject[] = [];
  for (let i = 0; i < count; i++) keys.push(privateKeyAt(certs, first + i));
  return keys;
}

/** Register certificates [first, first + keys.length) through `concurrency` sockets. */
export async function registrationRun(server: Addr, certs: CertSet, first: number, keys: KeyObject[], concurrency: number): Promise<RegistrationRun> {
  const count = keys.length;
  const eps = await Promise.all(Array.from({ length: concurrency }, () => Endpoint.open(server)));
  let next = 0;
  let done = 0;
  let refused = 0;
  const lat: number[] = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const start = (ep: Endpoint): void => {
      if (next >= count) {
        if (done + refused >= count) resolve();
        return;
      }
      const i = next++;
      const cert = certAt(certs, first + i);
      const nonce = randomBytes(16);
      const began = performance.now();
      const deliveryKey = new Uint8Array(randomBytes(32));
      let reg: Registered | undefined;
      ep.onData = (data) => {
        const r = decode(data);
        if (!r.ok) return;
        const m = r.msg;
        if (m.type === MsgType.CHALLENGE) {
          if (reg || !Buffer.from(m.nonce).equals(nonce)) return;
          const made = proveRegistration(cert, keys[i]!, nonce, m, deliveryKey);
          reg = made.reg;
          ep.send(made.proof);
          return;
        }
        if (reg && isRegistrationOk(m, reg.keys)) {
          done++;
          lat.push(performance.now() - began);
        } else if (m.type === MsgType.ERROR) {
          refused++;
        } else return;
        start(ep);
      };
      ep.send(encode({ type: MsgType.REGISTER, cert, nonce }));
    };
    for (const ep of eps) start(ep);
  });
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await Promise.all(eps.map((e) => e.close()));
  const sorted = Float64Array.from(lat).sort();
  const pct = (p: number): number => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! * 1000);
  return {
    registrations: done,
    refused,
    perS: Math.round((done * 1000) / wall),
    p50Us: pct(0.5),
    p99Us: pct(0.99),
    generatorCpuPct: Math.round(((cpu.user + cpu.system) / 1000 / wall) * 100),
  };
}

export interface RegistrationBreakdown {
  /** Microseconds per operation on one core, in this process. */
  /** Once per cookie epoch since protocol 2 (the handshake key's signature), not per registration. */
  challengeSignUs: number;
  /** What the peer does at registration: the strict DER walk and a JWK import of the key. */
  readCertificateKeyUs: number;
  proofVerifyUs: number;
  /** X25519 with the client's key, the session keys by HKDF, the delivery key unwrapped. */
  x25519Us: number;
  deriveSessionUs: number;
  unwrapDeliveryKeyUs: number;
  fingerprintUs: number;
  /** Not on the registration path: once per certificate, before the peer first serves it. */
  certParseUs: number;
  selfSignatureVerifyUs: number;
  checkCertificateUs: number;
}

/** Time each step of the peer's registration path over `n` distinct certificates. */
export function registrationBreakdown(certs: CertSet, first: number, n: number): RegistrationBreakdown {
  const ders = Array.from({ length: n }, (_, i) => certAt(certs, first + i));
  const keys = Array.from({ length: n }, (_, i) => privateKeyAt(certs, first + i));
  const msg = Buffer.concat([LABEL_REGISTER_BYTES, Buffer.alloc(20 + 32 + 16 + 32 + 32 + 48, 7)]);
  const sigs = keys.map((k) => sign(null, msg, k));
  const peerKey = keys[0]!;
  const time = (f: (i: number) => unknown): number => {
    const t = performance.now();
    for (let i = 0; i < n; i++) f(i);
    return Math.round(((performance.now() - t) * 1000) / n * 10) / 10;
  };
  const challengeSignUs = time(() => sign(null, msg, peerKey));
  const readCertificateKeyUs = time((i) => readCertificateKey(ders[i]!));
  const parsed: X509Certificate[] = [];
  const certParseUs = time((i) => parsed.push(new X509Certificate(ders[i]!)));
  const pubs: KeyObject[] = parsed.map((c) => c.publicKey);
  const selfSignatureVerifyUs = time((i) => parsed[i]!.verify(pubs[i]!));
  const proofVerifyUs = time((i) => verify(null, msg, pubs[i]!, sigs[i]!));
  const fingerprintUs = time((i) => hash('sha256', ders[i]!, 'buffer'));
  const peerHs = x25519KeyPair(randomBytes(32));
  const clients = Array.from({ length: n }, () => x25519KeyPair(randomBytes(32)).publicKey);
  const shared: Uint8Array[] = [];
  const x25519Us = time((i) => shared.push(x25519(peerHs.privateKey, clients[i]!)!));
  const nonce = randomBytes(16);
  const fps = ders.map((d) => hash('sha256', d, 'buffer'));
  const peerFp = fps[0]!;
  const sessions: SessionKeys[] = [];
  const deriveSessionUs = time((i) =>
    sessions.push(deriveSession({ shared: shared[i]!, nonce, clientFingerprint: fps[i]!, peerFingerprint: peerFp, clientKey: clients[i]!, peerKey: peerHs.publicKey })),
  );
  const wrapped = sessions.map((k) => wrapDeliveryKey(k.wrap, randomBytes(32)));
  const unwrapDeliveryKeyUs = time((i) => unwrapDeliveryKey(sessions[i]!.wrap, wrapped[i]!));
  const now = Date.now();
  const checkCertificateUs = time((i) => checkCertificate(ders[i]!, now));
  return { challengeSignUs, readCertificateKeyUs, proofVerifyUs, x25519Us, deriveSessionUs, unwrapDeliveryKeyUs, fingerprintUs, certParseUs, selfSignatureVerifyUs, checkCertificateUs };
}
