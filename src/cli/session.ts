/**
 * Helpers shared by the commands that run a node or a client: signals, the saved peer address,
 * waiting for events with a bound.
 */
import { PeerpostError, UsageError } from '../core/errors.js';
import { readConfig, updateConfig } from '../identity/home.js';
import { parsePeerAddress } from '../api/client.js';
import type { Messenger, MessengerEvents } from '../api/messenger.js';

/** Resolves on the first SIGINT or SIGTERM (and stops listening for them). */
export function untilSignal(): { promise: Promise<void>; dispose(): void } {
  let dispose = (): void => {};
  const promise = new Promise<void>((resolve) => {
    const on = (): void => {
      dispose();
      resolve();
    };
    process.once('SIGINT', on);
    process.once('SIGTERM', on);
    dispose = () => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
    };
  });
  return { promise, dispose };
}

/** The peer to use: --peer (then saved in the home folder), else the saved one. */
export async function peerFor(home: string, given: string | undefined): Promise<string> {
  if (given !== undefined) {
    parsePeerAddress(given, '--peer');
    const cfg = await readConfig(home);
    if (cfg.peer !== given) await updateConfig(home, { peer: given });
    return given;
  }
  const cfg = await readConfig(home);
  if (typeof cfg.peer === 'string') return cfg.peer;
  throw new UsageError('PEERPOST_NO_PEER', 'no peer: pass --peer HOST:PORT (it is saved in the home folder for next time)');
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

/** Resolves once registered with our peer; rejects with a clear error when it does not answer. */
export function waitRegistered(m: Messenger, peer: string, timeoutMs: number): Promise<void> {
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
    const onUnavail = (): void => done(new PeerpostError('PEERPOST_PEER_UNREACHABLE', `peer ${peer} does not answer`));
    const onChanged = (e: { actual: string; expected: string }): void =>
      done(new PeerpostError('PEERPOST_PEER_IDENTITY_CHANGED', `peer ${peer} now has identity ${e.actual}, not the pinned ${e.expected}; refusing to register`));
    const timer = setTimeout(() => done(new PeerpostError('PEERPOST_PEER_UNREACHABLE', `peer ${peer} did not answer within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
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

/**
 * In the chat on a terminal, info-level logs on stderr would run through the conversation: unless
 * --log-level or --log-file was given, only warnings and errors are shown there.
 */
export function quietChatLogs<T extends { 'log-level': string; 'log-file'?: string; json: boolean }>(argv: T): T {
  const explicit = process.argv.some((a) => a === '--log-level' || a.startsWith('--log-level='));
  if (!explicit && !argv['log-file'] && !argv.json && process.stdin.isTTY && process.stderr.isTTY) return { ...argv, 'log-level': 'warn' };
  return argv;
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
export interface OneShotArgs {
  peer?: string;
  timeout: number;
}

export function oneShotOptions<T>(y: import('yargs').Argv<T>): import('yargs').Argv<T> {
  return y
    .option('peer', { type: 'string', describe: 'your peer, HOST:PORT (default: the one saved in the home folder)', requiresArg: true })
    .option('timeout', { type: 'number', default: 15, describe: 'seconds to wait for the network', requiresArg: true }) as never;
}

/**
 * Run `f` with a client that is registered with its peer, then close it. The client keeps its
 * state in the home folder, so what it starts (an unfinished message) is continued next time.
 */
export async function withClient<T>(
  home: string,
  args: OneShotArgs,
  log: import('../core/types.js').Logger,
  f: (c: import('../api/client.js').Client, timeoutMs: number) => Promise<T>,
): Promise<T> {
  const timeoutMs = positiveSeconds(args.timeout, 'timeout');
  const peer = await peerFor(home, args.peer);
  const { Client } = await import('../api/client.js');
  const c = await Client.start({ peer, home, logger: log, options: { registerTriesBeforeUnavailable: 3 } });
  try {
    await waitRegistered(c, peer, timeoutMs);
    return await f(c, timeoutMs);
  } finally {
    await c.close();
  }
}
