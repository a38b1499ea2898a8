/**
 * `peerpost id`: show this node's identity (fingerprint, subject, validity), creating one if the
 * home folder has none. `peerpost id import` is in id-import.ts.
 */
import type { Argv, CommandModule } from 'yargs';
import { loadOrCreateIdentity } from '../../identity/store.js';
import { cliContext, type GlobalArgs } from '../context.js';
import { idSummary, idText } from '../id-summary.js';
import { identityCodeAsync } from '../../codes/identity-code.js';
import { readConfig } from '../../identity/home.js';
import { table } from '../context.js';
import { publishedLately } from '../dht.js';

/** The address of a node started with the defaults (npm start), used until a peer is saved. */
export const DEFAULT_NODE_ADDRESS = '127.0.0.1:7777';
import { idImportCommand } from './id-import.js';
import qrcode from 'qrcode-terminal';

interface IdArgs extends GlobalArgs {
  qr: boolean;
}

export const idCommand: CommandModule<GlobalArgs, IdArgs> = {
  command: 'id',
  describe: "show this node's identity, creating one if there is none",
  builder: (y: Argv<GlobalArgs>) =>
    y
      .command(idImportCommand)
      .option('qr', { type: 'boolean', default: false, describe: 'also print the address as a QR code (to scan with a phone)' })
      .example('$0 id', 'print the fingerprint, subject and validity')
      .example('$0 id --json', 'the same as one JSON object')
      .example('$0 id --qr', 'with a QR code of the address') as never,
  handler: async (argv) => {
    const ctx = cliContext(argv);
    const { identity, created } = await loadOrCreateIdentity(ctx.home);
    if (created) ctx.note(`created a new identity in ${ctx.home}`);
    ctx.log.debug({ home: ctx.home, created }, 'identity loaded');
    const summary = idSummary(identity, ctx.home, created);
    const cfg = await readConfig(ctx.home);
    const peer = typeof cfg.peer === 'string' ? cfg.peer : DEFAULT_NODE_ADDRESS;
    summary.code = await identityCodeAsync(identity.fingerprint);
    // The shortest address a contact can use: the fingerprint alone once a home record is published.
    const hint = `${identity.fingerprintHex}@${peer}`;
    const byFingerprint = await publishedLately(ctx.home);
    summary.address = byFingerprint ? identity.fingerprintHex : hint;
    if (byFingerprint) summary.hint = hint;
    const qr: string[] = [];
    if (argv.qr && !ctx.json) qrcode.generate(summary.address as string, { small: true }, (s) => qr.push(s));
    ctx.result(summary, [...idText(summary), ...table([['code', summary.code as string], ['address', summary.address as string], ...(byFingerprint ? [['or', hint] as [string, string]] : [])]), ...qr]);
  },
};
