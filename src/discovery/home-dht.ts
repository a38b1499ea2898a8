/**
 * Home records on HyperDHT (docs/PROTOCOL.md, "Home records"): publish(identity, record) stores
 * the signed value under the identity's Ed25519 key (mutablePut) and announces that key on the
 * fingerprint's topic; resolve(fingerprint) looks the topic up, fetches the value of each announced
 * key (mutableGet) and keeps the newest that verifies (verifyHomeValue).
 *
 * Bounds: the DHT is given DHT_READY_WAIT_MS to bootstrap; with no node answering by then its
 * status is 'unreachable' (reported once through onStatus) and publish/resolve answer
 * 'dht-unreachable' at once. A resolve takes at most DHT_RESOLVE_TIMEOUT_MS and fetches at most
 * DHT_CANDIDATES_MAX announced keys; a publish at most DHT_PUBLISH_TIMEOUT_MS. HyperDHT nodes drop
 * announcements after 20 minutes and mutable values after 48 hours, so a running client
 * republishes every DHT_REPUBLISH_INTERVAL_MS (HomePublisher).
 *
 * This is a driver: it owns sockets and timers. The client state machines never import it.
 */
import HyperDHT, { type KeyPair } from 'hyperdht';
import type { HomeRecord } from '../core/home.js';
import type { Addr, Logger } from '../core/types.js';
import { silentLogger } from '../core/types.js';
import type { Identity } from '../identity/certificate.js';
import { homeTopic, identityPublicKey, signHomeRecord, verifyHomeValue, type HomeRecordReason, type VerifiedHome } from './home-record.js';
import type { HomeResolver, ResolveResult } from './resolver.js';

export type { HomeResolver, ResolveResult } from './resolver.js';

export const DHT_READY_WAIT_MS = 5_000;
export const DHT_RESOLVE_TIMEOUT_MS = 10_000;
export const DHT_PUBLISH_TIMEOUT_MS = 10_000;
export const DHT_CANDIDATES_MAX = 16;
export const DHT_REPUBLISH_INTERVAL_MS = 10 * 60_000;

export type DhtStatus = 'starting' | 'ready' | 'unreachable' | 'closed';


export type PublishResult = { ok: true; seq: number; bytes: number } | { ok: false; reason: 'dht-unreachable' | 'timeout' | 'failed'; detail: string };

export interface HomeDhtOptions {
  /** Bootstrap nodes; undefined means HyperDHT's public ones. */
  bootstrap?: readonly Addr[];
  logger?: Logger;
  /** Called once per change of status (ready, unreachable, closed). */
  onStatus?: (status: DhtStatus, line: string) => void;
  readyWaitMs?: number;
}

/** Parse `HOST:PORT[,HOST:PORT...]` (literal IPs or names); throws a TypeError naming the bad item. */
export function parseBootstrap(text: string): Addr[] {
  const out: Addr[] = [];
  for (const item of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(item) ?? /^([A-Za-z0-9.-]+):(\d{1,5})$/.exec(item);
    const port = m ? Number(m[2]) : NaN;
    if (!m || !(port >= 1 && port <= 65535)) throw new TypeError(`"${item}" is not HOST:PORT`);
    out.push({ host: m[1]!, port });
  }
  if (!out.length) throw new TypeError('no HOST:PORT given');
  return out;
}

/** The identity as a HyperDHT key pair: the same Ed25519 key (sodium's 64-byte secret key is seed || public key). */
export function identityKeyPair(identity: Identity): KeyPair {
  const jwk = identity.privateKey.export({ format: 'jwk' });
  if (typeof jwk.d !== 'string') throw new TypeError('identity key does not export as an Ed25519 JWK');
  const seed = Buffer.from(jwk.d, 'base64url');
  const kp = HyperDHT.keyPair(seed);
  seed.fill(0);
  if (!kp.publicKey.equals(Buffer.from(identityPublicKey(identity)))) throw new TypeError('HyperDHT key pair differs from the identity key');
  return kp;
}

export class HomeDht implements HomeResolver {
  private readonly dht: HyperDHT;
  private readonly log: Logger;
  private statusNow: DhtStatus = 'starting';
  private readonly readyPromise: Promise<DhtStatus>;

  constructor(private readonly opts: HomeDhtOptions = {}) {
    this.log = opts.logger ?? silentLogger;
    const bootstrap = opts.bootstrap?.map((a) => ({ host: a.host, port: a.port }));
    this.dht = new HyperDHT(bootstrap ? { bootstrap } : {});
    this.dht.on('error', (e) => this.log.debug({ err: String(e) }, 'dht error'));
    this.readyPromise = this.waitReady(opts.readyWaitMs ?? DHT_READY_WAIT_MS);
  }

  get status(): DhtStatus {
    return this.statusNow;
  }

  /** Resolves with 'ready' or 'unreachable' within the ready wait. */
  ready(): Promise<DhtStatus> {
    return this.readyPromise;
  }

  private async waitReady(waitMs: number): Promise<DhtStatus> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((r) => (timer = setTimeout(r, waitMs)));
    await Promise.race([this.dht.fullyBootstrapped().catch(() => {}), timeout]);
    clearTimeout(timer);
    if (this.statusNow === 'closed') return 'closed';
    const reachable = this.dht.toArray().length > 0;
    this.setStatus(reachable ? 'ready' : 'unreachable', reachable ? 'DHT reachable' : `the DHT is not reachable (no bootstrap node answered within ${waitMs / 1000} s): contacts reach you only by FP@HOST:PORT`);
    return this.statusNow;
  }

  private setStatus(s: DhtStatus, line: string): void {
    if (s === this.statusNow) return;
    this.statusNow = s;
    this.opts.onStatus?.(s, line);
  }

  /** Sign and publish `record` (which must be `identity`'s); HyperDHT's seq is the record's. */
  async publish(identity: Identity, record: HomeRecord, timeoutMs = DHT_PUBLISH_TIMEOUT_MS): Promise<PublishResult> {
    const value = Buffer.from(signHomeRecord(identity, record));
    await this.ready();
    if (this.statusNow === 'unreachable' && this.dht.toArray().length > 0) this.setStatus('ready', 'DHT reachable again');
    if (this.statusNow !== 'ready') return { ok: false, reason: 'dht-unreachable', detail: 'the DHT is not reachable' };
    const kp = identityKeyPair(identity);
    const topic = Buffer.from(homeTopic(identity.fingerprint));
    const work = Promise.all([this.dht.mutablePut(kp, value, { seq: record.seq }), this.dht.announce(topic, kp).finished()]);
    const r = await bounded(work, timeoutMs);
    if (r === 'timeout') return { ok: false, reason: 'timeout', detail: `the DHT did not take the record within ${timeoutMs / 1000} s` };
    if (r instanceof Error) return { ok: false, reason: 'failed', detail: r.message };
    this.log.debug({ seq: record.seq, bytes: value.length }, 'home record published');
    return { ok: true, seq: record.seq, bytes: value.length };
  }

  async resolve(fingerprint: Uint8Array, o: { heldSeq?: number; timeoutMs?: number } = {}): Promise<ResolveResult> {
    if ((await this.ready()) !== 'ready') return { ok: false, reason: 'dht-unreachable', detail: 'the DHT is not reachable' };
    const timeoutMs = o.timeoutMs ?? DHT_RESOLVE_TIMEOUT_MS;
    const refused: HomeRecordReason[] = [];
    const r = await bounded(this.find(fingerprint, o.heldSeq, refused), timeoutMs);
    if (r === 'timeout') return { ok: false, reason: 'timeout', detail: `the DHT gave no answer within ${timeoutMs / 1000} s` };
    if (r instanceof Error) return { ok: false, reason: 'not-found', detail: r.message };
    if (r) return { ok: true, home: r };
    if (refused.length) return { ok: false, reason: 'invalid', detail: `no record verifies (${[...new Set(refused)].join(', ')})`, refused };
    return { ok: false, reason: 'not-found', detail: 'no record of this fingerprint in the DHT' };
  }

  private async find(fingerprint: Uint8Array, heldSeq: number | undefined, refused: HomeRecordReason[]): Promise<VerifiedHome | null> {
    const keys = new Map<string, Buffer>();
    const q = this.dht.lookup(Buffer.from(homeTopic(fingerprint)));
    for await (const reply of q) {
      for (const p of reply.peers ?? []) {
        if (keys.size < DHT_CANDIDATES_MAX && p.publicKey?.length === 32) keys.set(p.publicKey.toString('hex'), p.publicKey);
      }
    }
    const found = await Promise.all([...keys.values()].map(async (key) => {
      const got = await this.dht.mutableGet(key, { latest: true }).catch(() => null);
      if (!got) return null;
      const v = verifyHomeValue(got.value, { fingerprint, publicKey: key, ...(heldSeq !== undefined ? { heldSeq } : {}) });
      if (!v.ok) {
        refused.push(v.reason);
        return null;
      }
      // HyperDHT's own seq must match the record's, so a node cannot pass an old value as new.
      if (got.seq !== v.home.record.seq) {
        refused.push('stale_seq');
        return null;
      }
      return v.home;
    }));
    let best: VerifiedHome | null = null;
    for (const h of found) if (h && (!best || h.record.seq > best.record.seq)) best = h;
    return best;
  }

  async close(): Promise<void> {
    this.statusNow = 'closed';
    await this.dht.destroy().catch(() => {});
  }
}

async function bounded<T>(p: Promise<T>, ms: number): Promise<T | 'timeout' | Error> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), ms)));
  try {
    return await Promise.race([p.catch((e: unknown) => (e instanceof Error ? e : new Error(String(e)))), t]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Keeps one identity's record published: publish() now, then again every
 * DHT_REPUBLISH_INTERVAL_MS with a fresh seq, and at once whenever set() changes the peers.
 */
export class HomePublisher {
  private timer: NodeJS.Timeout | undefined;
  private peers: HomeRecord['peers'] = [];
  private lastSeq: number;

  constructor(
    private readonly dht: HomeDht,
    private readonly identity: Identity,
    private readonly o: { lastSeq?: number; onPublished?: (r: PublishResult) => void | Promise<void>; clock?: () => number; intervalMs?: number } = {},
  ) {
    this.lastSeq = o.lastSeq ?? 0;
  }

  /** The seq of the next record: above the last one, and the clock in ms when that is higher. */
  nextSeq(): number {
    this.lastSeq = Math.max(this.lastSeq + 1, (this.o.clock ?? Date.now)());
    return this.lastSeq;
  }

  /** Publish `peers` now (and from now on). Returns the first publication's result. */
  async set(peers: HomeRecord['peers']): Promise<PublishResult> {
    this.peers = peers;
    return this.publishNow();
  }

  private async publishNow(): Promise<PublishResult> {
    clearTimeout(this.timer);
    const now = (this.o.clock ?? Date.now)();
    const r = await this.dht.publish(this.identity, { fingerprint: this.identity.fingerprint, peers: this.peers, seq: this.nextSeq(), timeMs: now });
    await this.o.onPublished?.(r);
    if (this.dht.status !== 'closed') {
      this.timer = setTimeout(() => void this.publishNow(), this.o.intervalMs ?? DHT_REPUBLISH_INTERVAL_MS);
      this.timer.unref();
    }
    return r;
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}
