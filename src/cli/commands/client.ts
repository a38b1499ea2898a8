/** `peerpost client --peer HOST:PORT`: an interactive client of a peer elsewhere. */
import type { CommandModule } from 'yargs';
import { Client } from '../../api/client.js';
import { cliContext, type GlobalArgs } from '../context.js';
import { runChat } from '../chat.js';
import { startWeb, webOptions, type WebArgs } from '../web-option.js';
import { dhtOptions, dhtSettings, homePeer, keepHomePublished, resolveAddress, startDht, type DhtArgs } from '../dht.js';
import { peerFor, portOption, clientTuning, untilSignal, savePeer, RETAIN_DAYS_OPTION } from '../session.js';

interface Args extends GlobalArgs, WebArgs, DhtArgs {
  peer?: string;
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
      .option('peer', { type: 'string', describe: 'your peer, HOST:PORT (saved for next time)', requiresArg: true })
      .option('host', { type: 'string', describe: 'local address to send from (default all)', requiresArg: true })
      .option('port', { type: 'number', default: 0, describe: 'local UDP port (default any)', requiresArg: true })
      .option('keepalive', { type: 'number', describe: 'seconds between keepalives (default 25; 0 turns them off)', requiresArg: true })
      .option('retain-days', RETAIN_DAYS_OPTION) as never,
  handler: async (argv) => {
    const ctx = cliContext(argv);
    const peer = await peerFor(ctx.home, argv.peer);
    const tuning = clientTuning(argv);
    const settings = dhtSettings(argv);
    const sig = untilSignal();
    try {
      const client = await Client.start({
        peer, home: ctx.home, host: argv.host, port: portOption(argv.port), logger: ctx.log,
        options: tuning,
      });
      // A --peer is saved once it answered (a peer that never answers is not kept for next time).
      const onRegistered = (): void => void savePeer(ctx.home, peer).catch((e: Error) => ctx.note(`peerpost: could not save the peer: ${e.message}`));
      if (argv.peer !== undefined) client.once('registered', onRegistered);
      // The peer the user named is listed as given, with the fingerprint it answered with.
      const dht = startDht(settings, (l) => ctx.note(l), ctx.log);
      const home = dht ? keepHomePublished(client, dht, ctx.home, () => {
        const own = client.peerFingerprint !== undefined ? homePeer(peer, client.peerFingerprint) : null;
        return own ? [own] : [];
      }, ctx.log) : undefined;
      try {
        const web = await startWeb(client, argv, ctx.home, ctx.log, ctx.note);
        try {
          await runChat(client, {
            io: ctx.io, json: ctx.json, title: `peerpost client of ${peer}`, home: ctx.home,
            ...(web ? { web: web.url } : {}),
            ...(dht ? { resolveAddress: (fp: string) => resolveAddress(dht, fp) } : {}),
          }, sig.promise);
        } finally {
          await web?.close();
        }
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
