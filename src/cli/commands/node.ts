/**
 * `peerpost node`: run this node. For now it loads (or creates) the identity, prints the
 * fingerprint and the protocol version, and exits.
 */
import type { CommandModule } from 'yargs';
import { loadOrCreateIdentity } from '../../identity/store.js';
import { PROTOCOL_VERSION } from '../../protocol/constants.js';
import { cliContext, type GlobalArgs } from '../context.js';

export const nodeCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'node',
  describe: 'run this node (peer and client)',
  handler: async (argv) => {
    const ctx = cliContext(argv);
    const { identity, created } = await loadOrCreateIdentity(ctx.home);
    if (created) ctx.note(`created a new identity in ${ctx.home}`);
    ctx.result(
      { fingerprint: identity.fingerprintHex, home: ctx.home, created, protocolVersion: PROTOCOL_VERSION },
      [`fingerprint ${identity.fingerprintHex}`, `protocol version ${PROTOCOL_VERSION}`],
    );
  },
};
