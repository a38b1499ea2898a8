/** `peerpost delete CONTACT | --message ID`: delete messages from the history (takes the home lock). */
import type { CommandModule } from 'yargs';
import { UsageError } from '../../core/errors.js';
import { checkMessageId } from '../../api/messenger.js';
import { lockHome } from '../../api/home-lock.js';
import { openStore } from '../../store/index.js';
import { cliContext, type GlobalArgs } from '../context.js';
import { findContact } from '../read-store.js';

interface Args extends GlobalArgs {
  contact?: string;
  message?: string;
}

export const deleteCommand: CommandModule<GlobalArgs, Args> = {
  command: 'delete [contact]',
  describe: 'delete every message with a contact, or one message (--message ID), from the history',
  builder: (y) =>
    y
      .positional('contact', { type: 'string', describe: 'petname or fingerprint' })
      .option('message', { type: 'string', describe: 'the id of one message to delete', requiresArg: true }) as never,
  handler: (argv) => {
    const ctx = cliContext(argv);
    if ((argv.contact === undefined) === (argv.message === undefined)) {
      throw new UsageError('PEERPOST_DELETE_WHAT', 'say what to delete: a contact, or --message ID');
    }
    if (argv.message !== undefined) checkMessageId(argv.message);
    const lock = lockHome(ctx.home);
    try {
      const store = openStore(ctx.home);
      try {
        if (argv.message !== undefined) {
          const n = store.deleteHistory({ id: argv.message });
          if (n === 0) throw new UsageError('PEERPOST_UNKNOWN_MESSAGE', `no message ${argv.message} in the history`);
          return ctx.result({ deleted: n, message: argv.message }, [`deleted message ${argv.message}`]);
        }
        const ref = argv.contact!;
        const c = findContact(store.load(), ref);
        const fp = c?.fingerprint ?? ref.split('@')[0] ?? '';
        if (!/^[0-9a-f]{64}$/.test(fp)) throw new UsageError('PEERPOST_UNKNOWN_CONTACT', `no contact "${ref}" (give a petname or a fingerprint)`);
        const n = store.deleteHistory({ contact: fp });
        ctx.result({ deleted: n, contact: c?.petname ?? fp }, [`deleted ${n} message${n === 1 ? '' : 's'} with ${c?.petname ?? fp.slice(0, 12)}`]);
      } finally {
        store.close();
      }
    } finally {
      lock.release();
    }
  },
};
