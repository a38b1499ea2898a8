/**
 * The CLI's side of home records: the DHT options (`--dht-bootstrap HOST:PORT[,...]`,
 * PEERPOST_DHT_BOOTSTRAP, `--no-dht`, PEERPOST_NO_DHT=1), publishing the client's record after it
 * registers, and resolving a fingerprint for `contacts add FP`. A one-shot command waits for the
 * DHT at most DHT_ONESHOT_WAIT_MS beyond its own work; with the DHT unreachable it prints one
 * status line and goes on as without it.
 */
import { isIP } from 'node:net';
import { UsageError, PeerpostError } from '../core/errors.js';
import type { HomePeer } from '../core/home.js';
import type { Addr } from '../core/types.js';
import { fingerprintFromHex, type Identity } from '../identity/certificate.js';
import { readConfig, updateConfig } from '../identity/home.js';
import { DHT_READY_WAIT_MS, HomeDht, HomePublisher, parseBootstrap, type PublishResult, type ResolveResult } from '../discovery/home-dht.js';

/** The most a one-shot command waits for its record to be published after its own work is done. */
export const DHT_ONESHOT_WAIT_MS = DHT_READY_WAIT_MS;
/** A published record is shown as reachable by fingerprint alone for this long (HyperDHT keeps mutable values 48 h). */
export const HOME_PUBLISHED_FRESH_MS = 24 * 3600_000;

export interface DhtArgs {
  dht?: boolean;
  'dht-bootstrap'?: string;
}

export function dhtOptions<T>(y: import('yargs').Argv<T>): import('yargs').Argv<T> {
  return y
    .option('dht', { type: 'boolean', describe: 'publish and resolve home records on HyperDHT (--no-dht turns it off; also PEERPOST_NO_DHT=1)' })
    .option('dht-bootstrap', { type: 'string', describe: 'HOST:PORT[,HOST:PORT...] of DHT bootstrap nodes (default: HyperDHT\'s public ones; also PEERPOST_DHT_BOOTSTRAP)', requiresArg: true }) as never;
}

export interface DhtSettings {
  readonly enabled: boolean;
  /** undefined: HyperDHT's public bootstrap nodes. */
  readonly bootstrap?: Addr[];
}

export function dhtSettings(argv: DhtArgs, env: NodeJS.ProcessEnv = process.env): DhtSettings {
  const off = argv.dht === false || (argv.dht === undefined && env.PEERPOST_NO_DHT === '1');
  if (off) return { enabled: false };
  const text = argv['dht-bootstrap'] ?? env.PEERPOST_DHT_BOOTSTRAP;
  if (text === undefined || text === '') return { enabled: true };
  try {
    return { enabled: true, bootstrap: parseBootstrap(text) };
  } catch (e) {
    throw new UsageError('PEERPOST_BAD_OPTION', `--dht-bootstrap: ${(e as Error).message}; give HOST:PORT[,HOST:PORT...]`);
  }
}

/** A DHT node for this command, or null with --no-dht. The unreachable status is noted once. */
export function startDht(s: DhtSettings, note: (line: string) => void, log?: import('../core/types.js').Logger): HomeDht | null {
  if (!s.enabled) return null;
  return new HomeDht({
    ...(s.bootstrap ? { bootstrap: s.bootstrap } : {}),
    ...(log ? { logger: log } : {}),
    onStatus: (status, line) => {
      if (status === 'unreachable') note(`peerpost: ${line}`);
    },
  });
}

/**
 * A fingerprint as typed: 64 hex digits, either case, with or without ':' between bytes (as
 * `openssl x509 -fingerprint -sha256` prints it). Returns 64 lowercase hex or null.
 */
export function normalizeFingerprint(text: string): string | null {
  if (typeof text !== 'string') return null;
  const t = text.trim();
  const hex = /^([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$/.test(t) ? t.replace(/:/g, '') : t;
  if (!/^[0-9A-Fa-f]{64}$/.test(hex)) return null;
  return hex.toLowerCase();
}

/** Whether others can reach `host`: not loopback, private, link-local or unspecified. */
export function isPublicHost(host: string): boolean {
  const v = isIP(host);
  if (v === 4) {
    const [a, b] = host.split('.').map(Number) as [number, number];
    return !(a === 0 || a === 10 || a === 127 || (a === 169 && b === 254) || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127) || a >= 224);
  }
  if (v === 6) {
    const h = host.toLowerCase();
    return !(h === '::' || h === '::1' || h.startsWith('fe80:') || h.startsWith('fc') || h.startsWith('fd') || h.startsWith('::ffff:'));
  }
  return false;
}

/** The peer of `host:port` with its certificate fingerprint (64 hex), as a record lists it. */
export function homePeer(addr: string, fingerprintHex: string): HomePeer | null {
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(addr) ?? /^([^:\s[\]]+):(\d+)$/.exec(addr);
  const fp = fingerprintFromHex(fingerprintHex);
  if (!m || !fp) return null;
  return { host: m[1]!, port: Number(m[2]), fingerprint: fp };
}

/**
 * Publish `peers` as this identity's home, saving the seq (config.json `homeSeq`) so the next
 * record is newer, and when it was published (`homePublishedAtMs`, read by `peerpost id`).
 */
export async function publishHome(dht: HomeDht, identity: Identity, home: string, peers: HomePeer[]): Promise<{ publisher: HomePublisher; result: PublishResult }> {
  const cfg = await readConfig(home);
  const lastSeq = typeof cfg.homeSeq === 'number' && Number.isSafeInteger(cfg.homeSeq) ? cfg.homeSeq : 0;
  const publisher = new HomePublisher(dht, identity, {
    lastSeq,
    onPublished: async (r) => {
      if (r.ok) await updateConfig(home, { homeSeq: r.seq, homePublishedAtMs: Date.now() }).catch(() => {});
    },
  });
  const result = await publisher.set(peers);
  return { publisher, result };
}

/** Whether config.json says a record was published lately enough to be found by fingerprint alone. */
export async function publishedLately(home: string, nowMs = Date.now()): Promise<boolean> {
  const cfg = await readConfig(home);
  return typeof cfg.homePublishedAtMs === 'number' && nowMs - cfg.homePublishedAtMs < HOME_PUBLISHED_FRESH_MS;
}

/** Resolve `fp` (64 hex) to its verified home, or throw the specific error. */
export async function resolveHome(dht: HomeDht | null, fp: string): Promise<Extract<ResolveResult, { ok: true }>['home']> {
  if (!dht) throw new PeerpostError('PEERPOST_DHT_OFF', `cannot find ${fp} without the DHT (--no-dht): give FP@HOST:PORT`);
  const r = await dht.resolve(fingerprintFromHex(fp)!);
  if (r.ok) return r.home;
  switch (r.reason) {
    case 'dht-unreachable':
      throw new PeerpostError('PEERPOST_DHT_UNREACHABLE', `cannot find ${fp}: the DHT is not reachable; give FP@HOST:PORT`);
    case 'invalid':
      throw new PeerpostError('PEERPOST_HOME_INVALID', `cannot find ${fp}: the DHT holds records for it that do not verify (${r.detail})`);
    case 'timeout':
      throw new PeerpostError('PEERPOST_DHT_TIMEOUT', `cannot find ${fp}: ${r.detail}`);
    default:
      throw new PeerpostError('PEERPOST_HOME_NOT_FOUND', `cannot find ${fp} in the DHT (no record published; ask for FP@HOST:PORT)`);
  }
}


/**
 * For a running client or node: publish `peers()` each time `m` registers or its peers change
 * ('home-changed') while the list differs from the one published (and every DHT_REPUBLISH_INTERVAL_MS through HomePublisher). An empty
 * list publishes nothing. Returns what stops it.
 */
export function keepHomePublished(
  m: import('../api/messenger.js').Messenger,
  dht: HomeDht,
  home: string,
  peers: () => HomePeer[],
  log?: import('../core/types.js').Logger,
): { stop(): void } {
  let publisher: HomePublisher | undefined;
  let published = '';
  let stopped = false;
  const onRegistered = (): void => {
    const list = peers();
    const key = list.map((p) => `${p.host}:${p.port}/${Buffer.from(p.fingerprint).toString('hex')}`).join(',');
    if (!list.length || key === published || stopped) return;
    published = key;
    void (async () => {
      if (!publisher) publisher = (await publishHome(dht, m.identity, home, list)).publisher;
      else await publisher.set(list);
      if (stopped) publisher.stop();
    })().catch((e: Error) => log?.warn({ err: e.message }, 'home record not published'));
  };
  m.on('registered', onRegistered);
  // Peers added or removed (setPeers, /peers): the record follows.
  m.on('home-changed', onRegistered);
  if (m.registered) onRegistered();
  return {
    stop() {
      stopped = true;
      m.off('registered', onRegistered);
      m.off('home-changed', onRegistered);
      publisher?.stop();
    },
  };
}

/**
 * FP (64 hex) to FP@HOST:PORT of the first peer its verified home lists, with the certificate
 * that came with the record (its SHA-256 is FP: verifyHomeValue checked it).
 */
export async function resolveAddress(dht: HomeDht | null, fp: string): Promise<{ address: string; cert: Uint8Array }> {
  const h = await resolveHome(dht, fp);
  const p = h.record.peers[0]!;
  return { address: `${fp}@${p.host.includes(':') ? `[${p.host}]` : p.host}:${p.port}`, cert: h.cert };
}

/** The client's home resolutions answered from the DHT: the newest verified record, or null. */
export function homeResolverFor(dht: HomeDht): (fp: string) => Promise<import('../core/home.js').HomeRecord | null> {
  return async (fp) => {
    const bytes = fingerprintFromHex(fp);
    if (!bytes) return null;
    const r = await dht.resolve(bytes);
    return r.ok ? r.home.record : null;
  };
}
