/**
 * `peerpost peers list|add HOST:PORT|remove HOST:PORT`: the peers this home folder registers with,
 * in the order senders try them (saved in config.json; used from the next start, and by the
 * one-shot commands; a running chat changes its own with /peers).
 */
import type { Argv, CommandModule } from 'yargs';
import { readConfig } from '../../identity/home.js';
import { UsageError } from '../../core/errors.js';
import { addrKey } from '../../core/types.js';
import { parsePeerAddress } from '../../api/peer-address.js';
import { cliContext, type GlobalArgs } from '../context.js';
import { HOME_PEERS_MAX, resolveHostPort, savePeers } from '../session.js';
import { safeText } from '../safe-text.js';

/** The saved peers, in order (none when nothing is saved). */
export async function savedPeers(home: string): Promise<string[]> {
  const cfg = await readConfig(home);
  if (cfg.peers) return [...cfg.peers];
  return typeof cfg.peer === 'string' ? [cfg.peer] : [];
}

/** The new list after `add` (at the end) or `remove`; throws a UsageError with a stable code when it cannot be. */
export function changePeers(list: readonly string[], action: 'add' | 'remove', peer: string): string[] {
  const key = addrKey(parsePeerAddress(peer));
  if (action === 'add') {
    if (list.includes(key)) return [...list];
    if (list.length >= HOME_PEERS_MAX) throw new UsageError('PEERPOST_TOO_MANY_PEERS', `at most ${HOME_PEERS_MAX} peers`);
    return [...list, key];
  }
  if (!list.includes(key)) throw new UsageError('PEERPOST_UNKNOWN_PEER', `${key} is not one of your peers (${list.join(', ') || 'none saved'})`);
  if (list.length === 1) throw new UsageError('PEERPOST_NO_PEER', `${key} is your only peer: add another one first`);
  return list.filter((p) => p !== key);
}

const list: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'list',
  describe: 'list your peers, in the order senders try them',
  handler: async (argv) => {
    const ctx = cliContext(argv);
    const peers = await savedPeers(ctx.home);
    if (ctx.json) return ctx.result({ peers }, []);
    if (!peers.length) return ctx.note('no peers saved; add one with: peerpost peers add HOST:PORT');
    ctx.result({}, peers.map((p, i) => `${i + 1}. ${safeText(p)}${i === 0 ? '  (first: named in your messages)' : ''}`));
  },
};

interface PeerArgs extends GlobalArgs {
  address: string;
}

function change(action: 'add' | 'remove'): CommandModule<GlobalArgs, PeerArgs> {
  return {
    command: `${action} <address>`,
    describe: action === 'add' ? 'add a peer HOST:PORT at the end of your list' : 'remove a peer HOST:PORT from your list',
    builder: (y) => y.positional('address', { type: 'string' }) as never,
    handler: async (argv) => {
      const ctx = cliContext(argv);
      const address = action === 'add' ? await resolveHostPort(argv.address, 'peer address') : argv.address;
      const peers = changePeers(await savedPeers(ctx.home), action, address);
      await savePeers(ctx.home, peers);
      ctx.result({ peers }, [`your peers: ${peers.map((p) => safeText(p)).join(', ')} (used from the next start; in a running chat: /peers ${action} ${safeText(address)})`]);
    },
  };
}

export const peersCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'peers <action>',
  describe: 'the peers you register with: list, add, remove',
  builder: (y: Argv<GlobalArgs>) =>
    y.command(list).command(change('add')).command(change('remove')).demandCommand(1, 'say list, add or remove') as never,
  handler: () => {},
};
