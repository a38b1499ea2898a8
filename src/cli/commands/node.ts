/** `peerpost node`: a peer and a client on one UDP socket, with the interactive chat. */
import type { CommandModule } from 'yargs';
import { Node } from '../../api/node.js';
import { readConfig, updateConfig } from '../../identity/home.js';
import { cliContext, type GlobalArgs } from '../context.js';
import { runChat } from '../chat.js';
import { portOption, clientTuning, untilSignal, resolveHostPort, HOME_PEERS_MAX, RETAIN_DAYS_OPTION } from '../session.js';
import { parsePeerAddress } from '../../api/peer-address.js';
import { UsageError } from '../../core/errors.js';

interface Args extends GlobalArgs {
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
    y
      .option('host', { type: 'string', default: '127.0.0.1', describe: 'address to listen on (a literal IP)', requiresArg: true })
      .option('port', { type: 'number', default: 7777, describe: 'UDP port', requiresArg: true })
      .option('advertise', { type: 'string', describe: 'HOST:PORT others reach this node at (default: --host:--port)', requiresArg: true })
      .option('peer', { type: 'string', array: true, describe: 'another peer to register with as well, HOST:PORT (this node is the first; saved for next time)', requiresArg: true })
      .option('directory', { type: 'boolean', default: false, describe: 'keep a directory of clients that opt in' })
      .option('keepalive', { type: 'number', describe: 'seconds between keepalives (default 25; 0 turns them off)', requiresArg: true })
      .option('retain-days', RETAIN_DAYS_OPTION) as never,
  handler: async (argv) => {
    const ctx = cliContext(argv);
    const port = portOption(argv.port);
    const tuning = clientTuning(argv);
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
      try {
        // A node is its own first peer: `id` and one-shot commands use this address.
        const self = node.address.slice(node.fingerprint.length + 1);
        const peers = [self, ...extra.filter((p) => p !== self)];
        await updateConfig(ctx.home, { peer: self, peers: peers.length > 1 ? peers : undefined });
        await runChat(node, { io: ctx.io, json: ctx.json, title: `peerpost node on ${node.boundAddress}`, home: ctx.home }, sig.promise);
      } finally {
        await node.close();
      }
    } finally {
      sig.dispose();
    }
  },
};
