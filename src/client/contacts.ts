/**
 * The contact list: petnames for `fingerprint@host:port` addresses, each with its certificate once
 * known (given, or looked up at the contact's peer) and its verification state. A petname given
 * again with another fingerprint flags the contact `changed`: its unfinished messages fail and
 * nothing is sent to it until it is confirmed. Recipients are resolved here: a petname, a
 * contact's fingerprint, or an address. Bound: contactsMax (addContact throws).
 */
import { checkCertificate, fingerprintOf } from '../identity/certificate.js';
import { UsageError } from '../core/errors.js';
import { checkPetname, parseContactAddress } from './contact-address.js';
import type { ContactRecord } from './store.js';
import { hex, type ClientContext } from './context.js';
import type { CertLookups } from './lookups.js';
import type { Outgoing } from './outgoing.js';

export class ContactBook {
  constructor(private readonly ctx: ClientContext, private readonly lookups: CertLookups, private readonly outgoing: Outgoing) {}

  /** Add or update a contact (see Client.addContact); returns its record. */
  add(now: number, address: string, petname?: string, cert?: Uint8Array): ContactRecord {
    const s = this.ctx.s;
    const a = parseContactAddress(address);
    const name = checkPetname(petname ?? a.fingerprint.slice(0, 12));
    if (cert !== undefined) checkGivenCert(now, a.fingerprint, cert);
    const byName = s.contacts.find((c) => c.petname === name);
    const byFp = s.contacts.find((c) => c.fingerprint === a.fingerprint);
    if (byFp && byFp !== byName) {
      throw new UsageError('PEERPOST_CONTACT_EXISTS', `fingerprint ${a.fingerprint} is already the contact "${byFp.petname}"`);
    }
    let c: ContactRecord;
    if (byName) {
      c = byName;
      if (byName.fingerprint !== a.fingerprint) this.changeFingerprint(c, a.fingerprint);
      c.peer = a.peerKey;
    } else {
      if (s.contacts.length >= this.ctx.o.contactsMax) throw new UsageError('PEERPOST_CONTACTS_FULL', `at most ${this.ctx.o.contactsMax} contacts`);
      c = { petname: name, fingerprint: a.fingerprint, peer: a.peerKey, verification: 'unverified', changed: false, addedAtMs: now };
      s.contacts.push(c);
    }
    const known = cert ? hex(cert) : s.certs[a.fingerprint];
    if (known && !c.cert) c.cert = known;
    this.ctx.dirty = true;
    if (!c.cert) this.lookups.start(now, a.fingerprint, a.peerKey, false);
    // A new contact gets our card with our capability, so it can leave messages at our peer.
    if (!byName || byName.fingerprint !== a.fingerprint) this.outgoing.ensureCard(now, { fp: a.fingerprint, peer: a.peerKey }, true);
    return c;
  }

  /** Accept a contact flagged `changed`. */
  confirm(petname: string): void {
    const c = this.byName(petname);
    c.changed = false;
    delete c.previousFingerprint;
    this.ctx.dirty = true;
  }

  setVerification(petnameOrFp: string, state: ContactRecord['verification']): void {
    const c = this.ctx.s.contacts.find((x) => x.petname === petnameOrFp || x.fingerprint === petnameOrFp);
    if (!c) throw new UsageError('PEERPOST_UNKNOWN_CONTACT', `no contact "${petnameOrFp}"`);
    c.verification = state;
    this.ctx.dirty = true;
  }

  remove(petname: string): void {
    const c = this.byName(petname);
    this.ctx.s.contacts = this.ctx.s.contacts.filter((x) => x !== c);
    this.ctx.dirty = true;
  }

  /** A recipient (petname, contact fingerprint or `fp@host:port`) as fingerprint and peer. */
  /**
   * The recipient `r` names. A contact recorded as a mismatch takes no messages, except the VERIFY
   * messages of a live check (`forVerify`), so that the check can be run again and both sides learn
   * each other's answer.
   */
  resolve(r: string, forVerify = false): { fp: string; peer: string } {
    if (typeof r !== 'string') throw new UsageError('PEERPOST_RECIPIENT', 'recipient must be a string');
    const contacts = this.ctx.s.contacts;
    let c = contacts.find((x) => x.petname === r || x.fingerprint === r);
    let peer: string | undefined;
    if (!c && r.includes('@')) {
      const a = parseContactAddress(r);
      c = contacts.find((x) => x.fingerprint === a.fingerprint);
      peer = a.peerKey;
      if (!c) return { fp: a.fingerprint, peer };
    }
    if (!c) throw new UsageError('PEERPOST_UNKNOWN_CONTACT', `no contact "${r}" (add it with fp@host:port)`);
    if (c.changed) throw new UsageError('PEERPOST_CONTACT_CHANGED', `contact "${c.petname}" changed identity; confirm it before sending`);
    if (c.verification === 'mismatch' && !forVerify) throw new UsageError('PEERPOST_CONTACT_MISMATCH', `contact "${c.petname}" failed verification`);
    return { fp: c.fingerprint, peer: peer ?? c.peer };
  }

  /** The petname now names another fingerprint: flag it, fail what was going to the old one. */
  private changeFingerprint(c: ContactRecord, fingerprint: string): void {
    const previous = c.fingerprint;
    c.previousFingerprint = previous;
    c.fingerprint = fingerprint;
    delete c.cert;
    c.changed = true;
    c.verification = 'unverified';
    this.ctx.emit({ type: 'contact-changed', petname: c.petname, fingerprint, previous });
    this.outgoing.failMessagesTo(previous, 'contact-changed');
  }

  private byName(petname: string): ContactRecord {
    const c = this.ctx.s.contacts.find((x) => x.petname === petname);
    if (!c) throw new UsageError('PEERPOST_UNKNOWN_CONTACT', `no contact "${petname}"`);
    return c;
  }
}

function checkGivenCert(now: number, fp: string, cert: Uint8Array): void {
  if (!(cert instanceof Uint8Array) || hex(fingerprintOf(cert)) !== fp) {
    throw new UsageError('PEERPOST_CONTACT_CERT_MISMATCH', `the certificate given does not hash to ${fp}`);
  }
  const c = checkCertificate(cert, now);
  if (!c.ok) throw new UsageError('PEERPOST_CONTACT_BAD_CERT', `the certificate given is refused: ${c.detail}`);
}
