/**
 * Helpers shared by the commands that run a node or a client: signals, the saved peer address,
 * waiting for events with a bound.
 */
import { constants as osConstants } from 'node:os';
import { PeerpostError, UsageError } from '../core/errors.js';
import { readConfig, updateConfig } from '../identity/home.js';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { parsePeerAddress } from '../api/client.js';
import type { Messenger, MessengerEvents } from '../api/messenger.js';
import type { HomeDht } from '../discovery/home-dht.js';
import { DHT_ONESHOT_WAIT_MS, dhtOptions, dhtSettings, homeResolverFor, publishHome, startDht, type DhtArgs } from './dht.js';

/**
 * Resolves on the first SIGINT or SIGTERM, which starts a clean stop; a second one while stopping
 * forces the exit at once (status 128 + the signal's number, as a shell reports a killed program).
 */
export function untilSignal(): { promise: Promise<void>; dispose(): void } {
  let dispose = (): void => {};
  const promise = new Promise<void>((resolve) => {
    let stopping = false;
    const on = (sig: NodeJS.Signals): void => {
      if (stopping) {
        process.stderr.write(`peerpost: second ${sig}: stopping now\n`);
        process.exit(128 + (osConstants.signals[sig] ?? 15));
      }
      stopping = true;
      resolve();
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
    dispose = () => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
    };
  });
  return { promise, dispose };
}

/**
 * The peer to use: --peer, else the saved one. A --peer is not saved here: savePeer() saves it once
 * the peer has answered, so a command that fails leaves the saved peer as it was. Host names are
 * resolved (resolveHostPort). The config is read first, so a damaged config.json stops here.
 */
export async function peerFor(home: string, given: string | undefined): Promise<string> {
  const cfg = await readConfig(home);
  if (given !== undefined) return resolveHostPort(given, '--peer');
  if (typeof cfg.peer === 'string') return cfg.peer;
  throw new UsageError('PEERPOST_NO_PEER', 'no peer: pass --peer HOST:PORT (it is saved in the home folder once the peer answers)');
}

/** Save `peer` as the one to use next time (after it answered); with savePeers' list, as its first. */
export async function savePeer(home: string, peer: string): Promise<void> {
  const cfg = await readConfig(home);
  if (cfg.peer === peer && (cfg.peers === undefined || cfg.peers[0] === peer)) return;
  await updateConfig(home, { peer, peers: cfg.peers ? [peer, ...cfg.peers.filter((p) => p !== peer)] : undefined });
}

/** Most peers a client is registered with at once (as the client machine's homePeersMax). */
export const HOME_PEERS_MAX = 8;

/**
 * The peers to use, in order: every --peer given (resolved like resolveHostPort), else the saved
 * list, else the saved peer. Like peerFor(), nothing is saved here (savePeers() does).
 */
export async function peersFor(home: string, given: string | readonly string[] | undefined): Promise<string[]> {
  const cfg = await readConfig(home);
  const list = given === undefined ? [] : Array.isArray(given) ? given : [given as string];
  if (list.length > 0) {
    const out: string[] = [];
    for (const p of list) {
      const r = await resolveHostPort(p, '--peer');
      if (!out.includes(r)) out.push(r);
    }
    if (out.length > HOME_PEERS_MAX) throw new UsageError('PEERPOST_TOO_MANY_PEERS', `at most ${HOME_PEERS_MAX} peers`);
    return out;
  }
  if (cfg.peers) return [...cfg.peers];
  if (typeof cfg.peer === 'string') return [cfg.peer];
  throw new UsageError('PEERPOST_NO_PEER', 'no peer: pass --peer HOST:PORT (it is saved in the home folder once the peer answers)');
}

/** Save the list of peers to use next time (the first also as `peer`, for older versions). */
export async function savePeers(home: string, peers: readonly string[]): Promise<void> {
  if (peers.length === 0) return;
  const cfg = await readConfig(home);
  if (cfg.peer === peers[0] && JSON.stringify(cfg.peers ?? [cfg.peer]) === JSON.stringify(peers)) return;
  await updateConfig(home, { peer: peers[0], peers: [...peers] });
}

/** Wait until `pred` holds for an event of `name`, or time out with PEERPOST_TIMEOUT. */
export function waitFor<K extends keyof MessengerEvents>(
  m: Messenger,
  name: K,
  pred: (...args: MessengerEvents[K]) => boolean,
  timeoutMs: number,
  what: string,
): Promise<MessengerEvents[K][0]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      (m.off as (n: string, f: unknown) => void)(name as string, f);
      reject(new PeerpostError('PEERPOST_TIMEOUT', `timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`));
    }, timeoutMs);
    const f = (...args: MessengerEvents[K]): void => {
      if (!pred(...args)) return;
      clearTimeout(timer);
      (m.off as (n: string, f: unknown) => void)(name as string, f);
      resolve(args[0]);
    };
    (m.on as (n: string, f: unknown) => void)(name as string, f);
  });
}

/** Resolves once registered with one of our peers; rejects with a clear error when none answers. */
export function waitRegistered(m: Messenger, peer: string, timeoutMs: number): Promise<void> {
  const unavailable = new Set<string>();
  if (m.registered) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = (err?: Error): void => {
      clearTimeout(timer);
      m.off('registered', onReg);
      m.off('peer-unavailable', onUnavail);
      m.off('peer-identity-changed', onChanged);
      if (err) reject(err);
      else resolve();
    };
    const onReg = (): void => done();
    const onUnavail = (e: { peer: string }): void => {
      unavailable.add(e.peer);
      if (unavailable.size < m.peers().length) return;
      done(new PeerpostError('PEERPOST_PEER_UNREACHABLE', `your own peer ${peer} does not answer (is it running, and is the address right?)`));
    };
    const onChanged = (e: { actual: string; expected: string }): void =>
      done(new PeerpostError('PEERPOST_PEER_IDENTITY_CHANGED', `peer ${peer} now has identity ${e.actual}, not the pinned ${e.expected}; refusing to register`));
    const timer = setTimeout(() => done(new PeerpostError('PEERPOST_PEER_UNREACHABLE', `your own peer ${peer} did not answer within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
    m.on('registered', onReg);
    m.on('peer-unavailable', onUnavail);
    m.on('peer-identity-changed', onChanged);
  });
}

export function positiveSeconds(v: unknown, name: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError('PEERPOST_BAD_OPTION', `--${name} must be a positive number of seconds, not ${String(v)}`);
  return n * 1000;
}

/** --keepalive: seconds between keepalives; 0 turns them off. */
export function keepaliveOption(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new UsageError('PEERPOST_BAD_OPTION', `--keepalive must be 0 (off) or a positive number of seconds, not ${String(v)}`);
  return n * 1000;
}

/** --retain-days N: history older than N days is deleted (ms; undefined keeps it forever). */
export function retainOption(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError('PEERPOST_BAD_OPTION', `--retain-days must be a whole number of days >= 1, not ${String(v)}`);
  return n * 24 * 3600_000;
}

/** The client options of --keepalive and --retain-days. */
export function clientTuning(argv: { keepalive?: number; 'retain-days'?: number }): { keepaliveIntervalMs?: number; historyRetainMs?: number } {
  const keepaliveIntervalMs = keepaliveOption(argv.keepalive);
  const historyRetainMs = retainOption(argv['retain-days']);
  return { ...(keepaliveIntervalMs !== undefined ? { keepaliveIntervalMs } : {}), ...(historyRetainMs !== undefined ? { historyRetainMs } : {}) };
}

export const RETAIN_DAYS_OPTION = { type: 'number', describe: 'delete history older than N days (default: keep it until deleted)', requiresArg: true } as const;

export function portOption(v: unknown): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError('PEERPOST_BAD_PORT', `--port must be an integer from 0 to 65535, not ${String(v)}`);
  return n;
}

/** Options of the one-shot commands that talk to a peer. */
export interface OneShotArgs extends DhtArgs {
  peer?: string | string[];
  timeout: number;
}

export function oneShotOptions<T>(y: import('yargs').Argv<T>): import('yargs').Argv<T> {
  return dhtOptions(y)
    .option('peer', { type: 'string', array: true, describe: 'your peer, HOST:PORT; several --peer: several peers (default: those saved in the home folder)', requiresArg: true })
    .option('timeout', { type: 'number', default: 15, describe: 'seconds to wait for the network', requiresArg: true }) as never;
}

/**
 * Run `f` with a client that is registered with its peer, then close it. The client keeps its
 * state in the home folder, so what it starts (an unfinished message) is continued next time.
 * Once registered, the client publishes its home record on the DHT (unless --no-dht) while `f`
 * runs, and waits for that at most DHT_ONESHOT_WAIT_MS after `f` is done. `f` gets the DHT node
 * (null with --no-dht) to resolve fingerprints with.
 */
export async function withClient<T>(
  home: string,
  args: OneShotArgs,
  log: import('../core/types.js').Logger,
  f: (c: import('../api/client.js').Client, timeoutMs: number, dht: HomeDht | null) => Promise<T>,
  note: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Promise<T> {
  const timeoutMs = positiveSeconds(args.timeout, 'timeout');
  const peers = await peersFor(home, args.peer);
  const peer = peers[0]!;
  const settings = dhtSettings(args);
  const { Client } = await import('../api/client.js');
  const c = await Client.start({ peer, morePeers: peers.slice(1), home, logger: log, options: { registerTriesBeforeUnavailable: 3 } });
  const dht = startDht(settings, note, log);
  if (dht) c.setHomeResolver(homeResolverFor(dht));
  let publishing: Promise<unknown> | undefined;
  let publisher: { stop(): void } | undefined;
  try {
    await waitRegistered(c, peers.join(', '), timeoutMs);
    const own = c.homePeers();
    if (dht && own.length > 0) {
      publishing = publishHome(dht, c.identity, home, own).then((p) => {
        publisher = p.publisher;
        if (!p.result.ok) log.debug({ reason: p.result.reason }, 'home record not published');
      }, (e: Error) => log.warn({ err: e.message }, 'home record not published'));
    }
    const r = await f(c, timeoutMs, dht);
    // The record's seq is saved in config.json before the peers are (both rewrite the file).
    if (publishing) await boundedWait(publishing, DHT_ONESHOT_WAIT_MS);
    if (args.peer !== undefined) await savePeers(home, peers);
    return r;
  } finally {
    publisher?.stop();
    await dht?.close();
    await c.close();
  }
}

async function boundedWait(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

/**
 * HOST:PORT with HOST a literal IP (returned as given) or a host name, resolved to its first
 * address (IPv4 first) so that `localhost:7777` works. `[v6]:port` takes a literal IPv6 address.
 */
export async function resolveHostPort(s: string, what: string): Promise<string> {
  const a = parsePeerAddress(s, what);
  if (isIP(a.host) !== 0) return s;
  if (!/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(a.host)) {
    throw new UsageError('PEERPOST_BAD_ADDRESS', `${what}: "${a.host}" is neither an IP address nor a host name`);
  }
  let r: { address: string; family: number };
  try {
    r = await lookup(a.host, { order: 'ipv4first' });
  } catch (e) {
    throw new UsageError('PEERPOST_BAD_ADDRESS', `${what}: cannot resolve the host name "${a.host}" (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return r.family === 6 ? `[${r.address}]:${a.port}` : `${r.address}:${a.port}`;
}

/** FP@HOST:PORT with the host resolved like resolveHostPort(). */
export async function resolveContactAddress(s: string, what = 'contact address'): Promise<string> {
  const at = s.indexOf('@');
  if (at < 0) return s;
  return `${s.slice(0, at)}@${await resolveHostPort(s.slice(at + 1), what)}`;
}
