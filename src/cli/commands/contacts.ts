/** `peerpost contacts add|list|remove`. */
import type { Argv, CommandModule } from 'yargs';
import { checkPetname, emptyBatch, parseContactAddress, type ContactRecord } from '../../client/index.js';
import { lockHome } from '../../api/home-lock.js';
import { openStore } from '../../store/index.js';
import { findContact, withReadStore } from '../read-store.js';
import { PeerpostError, UsageError } from '../../core/errors.js';
import { cliContext, table, type GlobalArgs } from '../context.js';
import { oneShotOptions, resolveContactAddress, waitFor, withClient, type OneShotArgs } from '../session.js';
import { progress } from '../progress.js';
import { explainReason } from '../format.js';
import { safeText } from '../safe-text.js';
import { normalizeFingerprint, resolveAddress } from '../dht.js';

function flags(c: ContactRecord): string {
  if (c.changed) return 'CHANGED: confirm or remove';
  if (c.verification === 'mismatch') return 'CODES DID NOT MATCH';
  return c.verification;
}

/**
 * What `contacts add` was given: a fingerprint alone (resolved through the DHT) or FP@HOST:PORT
 * (the address is used as given). The fingerprint may be typed as openssl prints it.
 */
export function contactInput(text: string): { fingerprint: string; address?: string } {
  const at = text.indexOf('@');
  const fpText = at < 0 ? text : text.slice(0, at);
  const fp = normalizeFingerprint(fpText);
  if (!fp) throw new UsageError('PEERPOST_CONTACT_FINGERPRINT', `fingerprint "${fpText}" must be 64 hex characters (or 32 hex pairs with colons, as openssl prints it)`);
  return at < 0 ? { fingerprint: fp } : { fingerprint: fp, address: `${fp}${text.slice(at)}` };
}

interface AddArgs extends GlobalArgs, OneShotArgs {
  address: string;
  name?: string;
}

const add: CommandModule<GlobalArgs, AddArgs> = {
  command: 'add <address> [name]',
  describe: 'add a contact by fingerprint (found in the DHT) or FP@HOST:PORT; fetches and checks its certificate',
  builder: (y) => oneShotOptions(y).positional('address', { type: 'string' }).positional('name', { type: 'string', describe: 'petname' }) as never,
  handler: async (argv) => {
    const ctx = cliContext(argv);
    const given = contactInput(argv.address);
    if (given.address) parseContactAddress(given.address);
    const hinted = given.address ? await resolveContactAddress(given.address) : undefined;
    if (argv.name !== undefined) checkPetname(argv.name);
    let fromDht = false;
    const r = await withClient(ctx.home, argv, ctx.log, async (c, timeoutMs, dht) => {
      let address = hinted;
      let cert: Uint8Array | undefined;
      if (address === undefined) {
        const p = progress(ctx, `looking up ${given.fingerprint} in the DHT`, timeoutMs);
        try {
          ({ address, cert } = await resolveAddress(dht, given.fingerprint));
          fromDht = true;
        } finally {
          p.done();
        }
      }
      const before = c.contacts().find((x) => x.petname === (argv.name ?? '') || `${x.fingerprint}@${x.peer}` === address);
      // With a record, the certificate came with it (checked against the fingerprint): no lookup.
      const rec = c.addContact(address, argv.name, cert);
      if (rec.cert) return rec;
      // A failed add saves nothing: the contact is removed again whatever the failure.
      const undo = (): void => {
        if (!before) c.removeContact(rec.petname);
      };
      const p = progress(ctx, `fetching the certificate of ${rec.petname} from ${rec.peer}`, timeoutMs);
      try {
        const got = await waitFor(c, 'contact-cert', (e) => e.fingerprint === rec.fingerprint, timeoutMs,
          `the certificate of ${rec.petname} from ${rec.peer} (their peer does not answer, or drops our requests)`);
        if (!got.ok) {
          throw new PeerpostError('PEERPOST_CONTACT_CERT', `cannot add ${rec.petname}: ${explainReason(got.reason ?? 'certificate-unreachable')} (at ${rec.peer})`);
        }
        return c.contacts().find((x) => x.fingerprint === rec.fingerprint)!;
      } catch (e) {
        undo();
        throw e;
      } finally {
        p.done();
      }
    });
    const out = { petname: r.petname, fingerprint: r.fingerprint, peer: r.peer, verification: r.verification, changed: r.changed };
    ctx.result({ ...out, found: fromDht ? 'dht' : 'address' }, [`added ${r.petname}: ${r.fingerprint}@${r.peer} (${fromDht ? 'found in the DHT, ' : ''}certificate checked)${r.changed ? ' WARNING: this name had another identity before' : ''}`]);
  },
};

const list: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'list',
  describe: 'list contacts',
  handler: async (argv) => {
    const ctx = cliContext(argv);
    const cs = withReadStore(ctx, (_store, snap) => snap?.contacts ?? []);
    if (ctx.json) {
      ctx.result({ contacts: cs.map((c) => ({ petname: c.petname, fingerprint: c.fingerprint, peer: c.peer, verification: c.verification, changed: c.changed, certificate: Boolean(c.cert) })) }, []);
      return;
    }
    if (!cs.length) return ctx.note('no contacts; add one with: peerpost contacts add FP NAME (or FP@HOST:PORT NAME)');
    ctx.result({}, table(cs.map((c) => [safeText(c.petname), `${c.fingerprint}@${safeText(c.peer)}  ${flags(c)}`] as const)));
  },
};

interface RemoveArgs extends GlobalArgs {
  name: string;
}

const remove: CommandModule<GlobalArgs, RemoveArgs> = {
  command: 'remove <name>',
  describe: 'remove a contact',
  builder: (y) => y.positional('name', { type: 'string' }) as never,
  handler: async (argv) => {
    const ctx = cliContext(argv);
    const lock = lockHome(ctx.home);
    try {
      const store = openStore(ctx.home);
      try {
        const c = findContact(store.load(), argv.name);
        if (!c) throw new UsageError('PEERPOST_UNKNOWN_CONTACT', `no contact "${argv.name}"`);
        store.commit({ ...emptyBatch(), contacts: [[c.petname, undefined]] });
        ctx.result({ removed: c.petname, fingerprint: c.fingerprint }, [`removed ${c.petname} (its messages stay in the history: peerpost delete ${c.fingerprint})`]);
      } finally {
        store.close();
      }
    } finally {
      lock.release();
    }
  },
};

export const contactsCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'contacts <action>',
  describe: 'manage contacts: add, list, remove',
  builder: (y: Argv<GlobalArgs>) =>
    y.command(add).command(list).command(remove).demandCommand(1, 'say add, list or remove') as never,
  handler: () => {},
};
