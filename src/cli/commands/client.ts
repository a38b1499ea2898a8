/** `peerpost client --peer HOST:PORT [--peer HOST:PORT ...]`: an interactive client of one or more peers elsewhere. */
import type { CommandModule } from 'yargs';
import { Client } from '../../api/client.js';
import { cliContext, type GlobalArgs } from '../context.js';
import { chatWithPage, webOptions, type WebArgs } from '../web-option.js';
import { dhtOptions, dhtSettings, homeResolverFor, keepHomePublished, startDht, type DhtArgs } from '../dht.js';
import { peersFor, portOption, clientTuning, untilSignal, savePeers, RETAIN_DAYS_OPTION } from '../session.js';

interface Args extends GlobalArgs, WebArgs, DhtArgs {
  peer?: string[];
  host?: string;
  port: number;
  keepalive?: number;
  'retain-days'?: number;
}

export const clientCommand: CommandModule<GlobalArgs, Args> = {
  command: 'client',
  describe: 'run an interactive client of a peer elsewhere',
  builder: (y) =>
    dhtOptions(webOptions(y))
      .option('peer', { type: 'string', array: true, describe: 'your peer, HOST:PORT; give it again for several peers (saved for next time)', requiresArg: true })
      .option('host', { type: 'string', describe: 'local address to send from (default all)', requiresArg: true })
      .option('port', { type: 'number', default: 0, describe: 'local UDP port (default any)', requiresArg: true })
      .option('keepalive', { type: 'number', describe: 'seconds between keepalives (default 25; 0 turns them off)', requiresArg: true })
      .option('retain-days', RETAIN_DAYS_OPTION) as never,
  handler: async (argv) => {
    const ctx = cliContext(argv);
    const peers = await peersFor(ctx.home, argv.peer);
    const peer = peers[0]!;
    const tuning = clientTuning(argv);
    const settings = dhtSettings(argv);
    const sig = untilSignal();
    try {
      const client = await Client.start({
        peer, morePeers: peers.slice(1), home: ctx.home, host: argv.host, port: portOption(argv.port), logger: ctx.log,
        options: tuning,
      });
      // The --peer list is saved once one of them answered (peers that never answer are not kept for next time).
      const onRegistered = (): void => void savePeers(ctx.home, peers).catch((e: Error) => ctx.note(`peerpost: could not save the peers: ${e.message}`));
      if (argv.peer !== undefined) client.once('registered', onRegistered);
      // The peers the user named are listed as given, each with the fingerprint it answered with.
      const dht = startDht(settings, (l) => ctx.note(l), ctx.log);
      if (dht) client.setHomeResolver(homeResolverFor(dht));
      const home = dht ? keepHomePublished(client, dht, ctx.home, () => client.homePeers(), ctx.log) : undefined;
      try {
        await chatWithPage(client, argv, ctx, `peerpost client of ${peers.join(', ')}`, dht, sig.promise);
      } finally {
        home?.stop();
        await dht?.close();
        client.off('registered', onRegistered);
        await client.close();
      }
    } finally {
      sig.dispose();
    }
  },
};
