/** `peerpost node`: a peer and a client on one UDP socket, with the interactive chat. */
import type { CommandModule } from 'yargs';
import { Node } from '../../api/node.js';
import { readConfig, updateConfig } from '../../identity/home.js';
import { cliContext, type GlobalArgs } from '../context.js';
import { runChat } from '../chat.js';
import { startWeb, webOptions, type WebArgs } from '../web-option.js';
import { dhtOptions, dhtSettings, homePeer, isPublicHost, keepHomePublished, resolveAddress, startDht, type DhtArgs } from '../dht.js';
import { portOption, clientTuning, untilSignal, RETAIN_DAYS_OPTION } from '../session.js';

interface Args extends GlobalArgs, WebArgs, DhtArgs {
  host: string;
  port: number;
  advertise?: string;
  directory: boolean;
  keepalive?: number;
  'retain-days'?: number;
}

export const nodeCommand: CommandModule<GlobalArgs, Args> = {
  command: 'node',
  describe: 'run a node: your own peer and a client of it in one process, with the chat',
  builder: (y) =>
    dhtOptions(webOptions(y))
      .option('host', { type: 'string', default: '127.0.0.1', describe: 'address to listen on (a literal IP)', requiresArg: true })
      .option('port', { type: 'number', default: 7777, describe: 'UDP port', requiresArg: true })
      .option('advertise', { type: 'string', describe: 'HOST:PORT others reach this node at (default: --host:--port); published in the DHT as given, even a private or loopback address', requiresArg: true })
      .option('directory', { type: 'boolean', default: false, describe: 'keep a directory of clients that opt in' })
      .option('keepalive', { type: 'number', describe: 'seconds between keepalives (default 25; 0 turns them off)', requiresArg: true })
      .option('retain-days', RETAIN_DAYS_OPTION) as never,
  handler: async (argv) => {
    const ctx = cliContext(argv);
    const port = portOption(argv.port);
    const tuning = clientTuning(argv);
    const settings = dhtSettings(argv);
    // A damaged config.json stops here, before the port and the home folder's lock are taken.
    await readConfig(ctx.home);
    const sig = untilSignal();
    try {
      const node = await Node.start({
        host: argv.host, port, advertise: argv.advertise, home: ctx.home, logger: ctx.log,
        peerOptions: { directory: argv.directory },
        clientOptions: tuning,
      });
      let dht: ReturnType<typeof startDht> = null;
      let published: { stop(): void } | undefined;
      try {
        // A node is its own peer: `id` and one-shot commands use this address.
        const self = node.address.slice(node.fingerprint.length + 1);
        await updateConfig(ctx.home, { peer: self });
        // Its own peer goes in the home record only when others can reach it: an explicit
        // --advertise, or a public bind address (never loopback or a private one by default).
        const listed = argv.advertise !== undefined || isPublicHost(argv.host) ? homePeer(self, node.fingerprint) : null;
        if (!listed) ctx.log.info('home record not published: give --advertise HOST:PORT, the address others reach this node at');
        dht = startDht(settings, (l) => ctx.note(l), ctx.log);
        const d = dht;
        published = d && listed ? keepHomePublished(node, d, ctx.home, () => [listed], ctx.log) : undefined;
        const web = await startWeb(node, argv, ctx.home, ctx.log, ctx.note);
        try {
          await runChat(node, {
            io: ctx.io, json: ctx.json, title: `peerpost node on ${node.boundAddress}`, home: ctx.home,
            ...(web ? { web: web.url } : {}),
            ...(d ? { resolveAddress: (fp: string) => resolveAddress(d, fp) } : {}),
          }, sig.promise);
        } finally {
          await web?.close();
        }
      } finally {
        published?.stop();
        await dht?.close();
        await node.close();
      }
    } finally {
      sig.dispose();
    }
  },
};
