/** `peerpost history CONTACT [--limit N] [--before ID] [--search TEXT]`: read the history (works while a node runs). */
import type { CommandModule } from 'yargs';
import { UsageError } from '../../core/errors.js';
import { checkMessageId } from '../../api/messenger.js';
import { cliContext, type GlobalArgs } from '../context.js';
import { findContact, withReadStore } from '../read-store.js';
import { historyJson, historyLine } from '../history-format.js';

interface Args extends GlobalArgs {
  contact: string;
  limit: number;
  before?: string;
  search?: string;
}

export const historyCommand: CommandModule<GlobalArgs, Args> = {
  command: 'history <contact>',
  describe: 'show the messages sent to and received from a contact (petname, fingerprint, or "all")',
  builder: (y) =>
    y
      .positional('contact', { type: 'string', describe: 'petname, fingerprint or FP@HOST:PORT; "all" for every contact' })
      .option('limit', { type: 'number', default: 20, describe: 'at most this many (the newest)', requiresArg: true })
      .option('before', { type: 'string', describe: 'only messages before the message with this id (page back)', requiresArg: true })
      .option('search', { type: 'string', describe: 'only messages whose text has these words', requiresArg: true }) as never,
  handler: (argv) => {
    const ctx = cliContext(argv);
    if (!Number.isInteger(argv.limit) || argv.limit < 1) throw new UsageError('PEERPOST_BAD_LIMIT', '--limit must be an integer >= 1');
    if (argv.before !== undefined) checkMessageId(argv.before);
    withReadStore(ctx, (store, snap) => {
      let contact: string | undefined;
      if (argv.contact !== 'all') {
        const c = findContact(snap, argv.contact);
        const fp = c?.fingerprint ?? argv.contact.split('@')[0] ?? '';
        if (!/^[0-9a-f]{64}$/.test(fp)) throw new UsageError('PEERPOST_UNKNOWN_CONTACT', `no contact "${argv.contact}" (give a petname, a fingerprint, or all)`);
        contact = fp;
      }
      const list = store?.history({
        limit: argv.limit, ...(contact ? { contact } : {}), ...(argv.before ? { beforeId: argv.before } : {}), ...(argv.search !== undefined ? { search: argv.search } : {}),
      }) ?? [];
      if (ctx.json) return ctx.result({ messages: list.map(historyJson) }, []);
      const names = new Map((snap?.contacts ?? []).map((c) => [c.fingerprint, c.petname]));
      const nameOf = (fp: string): string => names.get(fp) ?? fp.slice(0, 12);
      const now = Date.now();
      ctx.result({}, list.map((e) => historyLine(e, nameOf, now)));
      if (!list.length) ctx.note('no messages');
      else if (list.length === argv.limit) ctx.note(`older: --before ${list[0]!.id}`);
    });
  },
};
