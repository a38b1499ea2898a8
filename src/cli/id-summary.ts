/** The result of `peerpost id` and `peerpost id import`, as JSON and as text. */
import { checkCertificate, type Identity } from '../identity/certificate.js';
import { table } from './context.js';

/**
 * The JSON result of `peerpost id` (and of `id import`). New fields are added here and in
 * idText; consumers must ignore fields they do not know.
 */
export interface IdSummary {
  fingerprint: string;
  home: string;
  created: boolean;
  subject: string;
  notBefore: string;
  notAfter: string;
  [field: string]: unknown;
}

export function idSummary(identity: Identity, home: string, created: boolean, nowMs = Date.now()): IdSummary {
  const check = checkCertificate(identity.cert, nowMs);
  // The identity was checked when it was loaded; only a clock passing notAfter meanwhile lands here.
  const subject = check.ok ? check.subject : '';
  const notBefore = check.ok ? new Date(check.notBeforeMs).toISOString() : '';
  const notAfter = check.ok ? new Date(check.notAfterMs).toISOString() : '';
  return { fingerprint: identity.fingerprintHex, home, created, subject, notBefore, notAfter };
}

export function idText(s: IdSummary): string[] {
  return table([
    ['fingerprint', s.fingerprint],
    ['subject', s.subject.replace(/\n/g, ', ')],
    ['valid', `${s.notBefore} to ${s.notAfter}`],
    ['home', s.home],
  ]);
}
