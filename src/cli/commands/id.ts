/**
 * `peerpost id`: show this node's identity (fingerprint, subject, validity), creating one if the
 * home folder has none. `peerpost id import` is in id-import.ts.
 */
import type { Argv, CommandModule } from 'yargs';
import { loadOrCreateIdentity } from '../../identity/store.js';
import { cliContext, type GlobalArgs } from '../context.js';
import { idSummary, idText } from '../id-summary.js';
import { idImportCommand } from './id-import.js';

export const idCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'id',
  describe: "show this node's identity, creating one if there is none",
  builder: (y: Argv<GlobalArgs>) =>
    y
      .command(idImportCommand)
      .example('$0 id', 'print the fingerprint, subject and validity')
      .example('$0 id --json', 'the same as one JSON object'),
  handler: async (argv) => {
    const ctx = cliContext(argv);
    const { identity, created } = await loadOrCreateIdentity(ctx.home);
    if (created) ctx.note(`created a new identity in ${ctx.home}`);
    ctx.log.debug({ home: ctx.home, created }, 'identity loaded');
    const summary = idSummary(identity, ctx.home, created);
    ctx.result(summary, idText(summary));
  },
};
