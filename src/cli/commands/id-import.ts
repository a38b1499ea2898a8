/** `peerpost id import --cert FILE --key FILE [--force]`: install an existing certificate and key. */
import type { Argv, CommandModule } from 'yargs';
import { importIdentity } from '../../identity/store.js';
import { cliContext, type GlobalArgs } from '../context.js';
import { idSummary, idText } from '../id-summary.js';

interface ImportArgs extends GlobalArgs {
  cert: string;
  key: string;
  force: boolean;
}

export const idImportCommand: CommandModule<GlobalArgs, ImportArgs> = {
  command: 'import',
  describe: 'import a certificate (PEM or DER, Ed25519, self-signed) and its PKCS#8 PEM private key',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .option('cert', { type: 'string', demandOption: true, requiresArg: true, describe: 'certificate file' })
      .option('key', { type: 'string', demandOption: true, requiresArg: true, describe: 'private key file' })
      .option('force', { type: 'boolean', default: false, describe: 'replace an identity already in the home folder' })
      .example('$0 id import --cert c.pem --key k.pem', 'use a certificate made with openssl'),
  handler: async (argv) => {
    const ctx = cliContext(argv);
    const identity = await importIdentity(ctx.home, argv.cert, argv.key, { force: argv.force });
    ctx.note(`imported the identity into ${ctx.home}`);
    const summary = idSummary(identity, ctx.home, false);
    ctx.result(summary, idText(summary));
  },
};
