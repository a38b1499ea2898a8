/** `peerpost backup FILE`: a consistent copy of the message store, also while a node runs. */
import type { CommandModule } from 'yargs';
import { backupStore, STORE_FILE_NAME } from '../../store/index.js';
import { cliContext, type GlobalArgs } from '../context.js';

interface Args extends GlobalArgs {
  file: string;
}

export const backupCommand: CommandModule<GlobalArgs, Args> = {
  command: 'backup <file>',
  describe: `write a consistent copy of the message store (${STORE_FILE_NAME}: contacts, outbox, history) to FILE`,
  builder: (y) => y.positional('file', { type: 'string', describe: 'a new file' }) as never,
  handler: async (argv) => {
    const ctx = cliContext(argv);
    const r = await backupStore(ctx.home, argv.file);
    ctx.result({ ...r }, [
      `backup written to ${r.file} (${r.bytes} bytes, ${r.messages} messages)`,
      `to restore it: stop peerpost, copy it over ${ctx.home}/${STORE_FILE_NAME} and delete ${STORE_FILE_NAME}-wal and ${STORE_FILE_NAME}-shm there`,
    ]);
  },
};
