/** `peerpost peer`: run a relay only, until SIGINT or SIGTERM. */
import type { CommandModule } from 'yargs';
import { Peer } from '../../api/peer.js';
import { cliContext, type GlobalArgs } from '../context.js';
import { portOption, untilSignal } from '../session.js';

interface Args extends GlobalArgs {
  host: string;
  port: number;
  directory: boolean;
  'summary-interval': number;
}

export const peerCommand: CommandModule<GlobalArgs, Args> = {
  command: 'peer',
  describe: 'run a peer (relay) for clients; it keeps everything in RAM',
  builder: (y) =>
    y
      .option('host', { type: 'string', default: '127.0.0.1', describe: 'address to listen on (a literal IP; 0.0.0.0 for all)', requiresArg: true })
      .option('port', { type: 'number', default: 7777, describe: 'UDP port', requiresArg: true })
      .option('directory', { type: 'boolean', default: false, describe: 'keep a directory of clients that opt in (/who)' })
      .option('summary-interval', { type: 'number', default: 60, describe: 'seconds between one-line summaries in the log (0: none)', requiresArg: true }) as never,
  handler: async (argv) => {
    // A relay is a service: its log says when it started and its periodic summary (info).
    const ctx = cliContext({ ...argv, 'log-level': argv['log-level'] ?? 'info' });
    const port = portOption(argv.port);
    const sig = untilSignal();
    try {
      const peer = await Peer.start({
        host: argv.host, port, home: ctx.home, logger: ctx.log, directory: argv.directory,
        summaryIntervalMs: Math.max(0, Number(argv['summary-interval']) || 0) * 1000,
      });
      ctx.result(
        { event: 'listening', address: peer.address, fingerprint: peer.fingerprint, directory: argv.directory },
        [`peer listening on ${peer.address}`, `peer fingerprint ${peer.fingerprint}`, 'Ctrl-C stops it'],
      );
      await sig.promise;
      const s = peer.stats();
      await peer.close();
      ctx.note(`peer stopped: ${s.registered} clients, ${s.waitingMessages} waiting messages forgotten`);
    } finally {
      sig.dispose();
    }
  },
};
