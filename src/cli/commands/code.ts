/** `peerpost code <contact>`: both 6-digit identity codes and the 60-digit safety number (no network). */
import type { CommandModule } from 'yargs';
import { codesFor } from '../../api/messenger.js';
import { UsageError } from '../../core/errors.js';
import { loadOrCreateIdentity } from '../../identity/store.js';
import { fingerprintFromHex } from '../../identity/certificate.js';
import { cliContext, table, type GlobalArgs } from '../context.js';
import { findContact, withReadStore } from '../read-store.js';

interface Args extends GlobalArgs {
  contact: string;
}

export const codeCommand: CommandModule<GlobalArgs, Args> = {
  command: 'code <contact>',
  describe: 'show your code, the contact\'s code and your safety number (compare them with the contact)',
  builder: (y) => y.positional('contact', { type: 'string', describe: 'petname, fingerprint or FP@HOST:PORT' }) as never,
  handler: async (argv) => {
    const ctx = cliContext(argv);
    const { identity } = await loadOrCreateIdentity(ctx.home);
    const c = withReadStore(ctx, (_store, snap) => findContact(snap, argv.contact));
    const fp = c?.fingerprint ?? argv.contact.split('@')[0] ?? '';
    if (!fingerprintFromHex(fp)) {
      throw new UsageError('PEERPOST_UNKNOWN_CONTACT', `no contact "${argv.contact}" (give a petname, or FP@HOST:PORT with a 64-hex fingerprint)`);
    }
    const codes = await codesFor(identity.fingerprintHex, fp);
    const state = c ? (c.changed ? 'CHANGED' : c.verification) : 'not a contact';
    ctx.result(
      { mine: codes.mine, theirs: codes.theirs, safetyNumber: codes.safetyNumber.replace(/ /g, ''), contact: c?.petname ?? null, fingerprint: fp, verification: state },
      [
        ...table([['your code', codes.mine], [`${c?.petname ?? fp.slice(0, 12)}'s code`, codes.theirs], ['safety number', codes.safetyNumber], ['state', state]]),
        'Compare the safety number (or run peerpost verify while both are online) before trusting the contact.',
      ],
    );
  },
};
