/** `peerpost node`: a peer and a client on one UDP socket, with the interactive chat. */
import type { CommandModule } from 'yargs';
import { Node } from '../../api/node.js';
import { readConfig, updateConfig } from '../../identity/home.js';
import { cliContext, type GlobalArgs } from '../context.js';
import { chatWithPage, webOptions, type WebArgs } from '../web-option.js';
import { dhtOptions, dhtSettings, homePeer, homeResolverFor, isPublicHost, keepHomePublished, startDht, type DhtArgs } from '../dht.js';
import { portOption, clientTuning, untilSignal, resolveHostPort, HOME_PEERS_MAX, RETAIN_DAYS_OPTION } from '../session.js';
import { parsePeerAddress } from '../../api/peer-address.js';
import { UsageError } from '../../core/errors.js';
import { addrKey } from '../../core/types.js';

interface Args extends GlobalArgs, WebArgs, DhtArgs {
  host: string;
  port: number;
  advertise?: string;
  peer?: string[];
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
      .option('peer', { type: 'string', array: true, describe: 'another peer to register with as well, HOST:PORT (this node is the first; saved for next time)', requiresArg: true })
      .option('directory', { type: 'boolean', default: false, describe: 'keep a directory of clients that opt in' })
      .option('keepalive', { type: 'number', describe: 'seconds between keepalives (default 25; 0 turns them off)', requiresArg: true })
      .option('retain-days', RETAIN_DAYS_OPTION) as never,
  handler: async (argv) => {
    const ctx = cliContext(argv);
    const port = portOption(argv.port);
    const tuning = clientTuning(argv);
    const settings = dhtSettings(argv);
    // A damaged config.json stops here, before the port and the home folder's lock are taken.
    const cfg = await readConfig(ctx.home);
    // Further peers: those given, else those saved after this node's own (its own address may have changed).
    const extra: string[] = [];
    if (argv.peer?.length) for (const p of argv.peer) extra.push(await resolveHostPort(p, '--peer'));
    else if (cfg.peers) extra.push(...cfg.peers.slice(1));
    if (extra.length + 1 > HOME_PEERS_MAX) throw new UsageError('PEERPOST_TOO_MANY_PEERS', `at most ${HOME_PEERS_MAX} peers, this node included`);
    const sig = untilSignal();
    try {
      const node = await Node.start({
        host: argv.host, port, advertise: argv.advertise, home: ctx.home, logger: ctx.log,
        peerOptions: { directory: argv.directory },
        clientOptions: { ...tuning, morePeers: extra.map((p) => parsePeerAddress(p)) },
      });
      let dht: ReturnType<typeof startDht> = null;
      let published: { stop(): void } | undefined;
      try {
        // A node is its own first peer: `id` and one-shot commands use this address.
        const self = node.address.slice(node.fingerprint.length + 1);
        const peers = [self, ...extra.filter((p) => p !== self)];
        await updateConfig(ctx.home, { peer: self, peers: peers.length > 1 ? peers : undefined });
        // Its own peer goes in the home record only when others can reach it: an explicit
        // --advertise, or a public bind address (never loopback or a private one by default).
        // The other peers are listed as given, each with the fingerprint it answered with.
        const listed = argv.advertise !== undefined || isPublicHost(argv.host) ? homePeer(self, node.fingerprint) : null;
        if (!listed && extra.length === 0) ctx.log.info('home record not published: give --advertise HOST:PORT, the address others reach this node at');
        dht = startDht(settings, (l) => ctx.note(l), ctx.log);
        const d = dht;
        if (d) node.setHomeResolver(homeResolverFor(d));
        const record = (): ReturnType<typeof node.homePeers> => node.homePeers().filter((p) => addrKey(p) !== self || listed !== null);
        published = d ? keepHomePublished(node, d, ctx.home, record, ctx.log) : undefined;
        await chatWithPage(node, argv, ctx, `peerpost node on ${node.boundAddress}`, d, sig.promise);
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
