/**
 * Contacts' homes: the peers a recipient is registered with, in the order to try them (a
 * HomeRecord, src/core/home.ts), and which of them failed us lately. Without a record the hint
 * address (`fp@host:port`, the peer named in a sealed message) is the only home; with one, its
 * peers come first (at most homePeersMax of them) and the hint last, except for receipts: the
 * peer a message names for its receipt was its sender's choice when it sealed it, so it comes
 * first (`hintFirst`).
 *
 * Resolution is a sans-I/O port: when a peer of a recipient's home stops answering or answers that
 * the recipient is not there, this asks for the record again: pollHomeRequest() gives the
 * fingerprint to resolve, and the embedding answers with Client.homeResolved(fp, record | null)
 * (a DHT lookup in a node). Nothing is asked for until the embedding says it answers
 * (Client.resolveHomes(true)); without, the hint stays the only home besides a record given.
 * A record is taken only over an older one (higher seq); the embedding passes only records whose
 * signature it checked.
 *
 * Failover: a peer that did not answer homeFailoverTries DELIVERs in a row is `down` for that
 * recipient, one that answered HELD (the recipient is not connected there) is `away`, each for
 * homeResolveIntervalMs (then it is tried again like any other). The peer to use is the first of the home that is neither, else the
 * first that is not down (a message held there still reaches the recipient when it comes back).
 * When every peer is down the recipient is unreachable: its messages stay `queued` with reason
 * `recipient-unreachable` and go on to the peers of its home in turn, homeFailoverTries
 * transmissions each, on the retransmission schedule (the RTO keeps doubling to its maximum),
 * while the home is resolved again every homeResolveIntervalMs; the first answer, or a new
 * record (whose first peer that did not fail lately is tried at once), ends it.
 *
 * Timer `home`: a resolution not answered within homeResolveTimeoutMs counts as answered with no
 * record; a resolution wanted less than homeResolveIntervalMs after the last one is asked for
 * when that time has passed.
 *
 * Bounds (behaviour at the bound):
 *   homePeersMax          peers of a record that are used; the rest are ignored
 *   homeResolutionsMax    resolutions asked for and not answered; beyond, none is asked for (counted
 *                         `home_resolutions_full`) and the next failover or HELD asks again
 *   homeResolveIntervalMs least time between two resolutions of the same recipient
 *   homesMax              records kept (persisted); the least recently used is forgotten (its hint stays)
 *   failover state        one entry per recipient with messages or receipts in flight, forgotten
 *                         when nothing is down, away or asked for
 */
import { addrKey, parseAddr } from '../core/types.js';
import type { HomeRecord } from '../core/home.js';
import { UsageError } from '../core/errors.js';
import { earlier, hex, type ClientContext } from './context.js';

interface HomeState {
  /** Peers that did not answer (host:port), with when. */
  readonly down: Map<string, number>;
  /** Peers that answered the recipient is not there, with when. */
  readonly away: Map<string, number>;
  /** A resolution is asked for (or queued) and not answered before this time. */
  resolvingUntil?: number;
  /** When the last resolution was asked for. */
  askedAtMs?: number;
  /** A resolution wanted while the last one was too recent: asked for at this time. */
  askAt?: number;
}

export interface HomeHooks {
  /** The home of `fp` changed (a new record): move its transfers. */
  rehome(now: number, fp: string): void;
}

export class HomeBook {
  private readonly state = new Map<string, HomeState>();
  /** Fingerprints to resolve, for pollHomeRequest(); each one is also `resolvingUntil` in its state. */
  private readonly requests: string[] = [];
  private inFlight = 0;
  /** Whether the embedding answers resolutions (Client.resolveHomes); without, none is asked for. */
  enabled = false;

  constructor(private readonly ctx: ClientContext, private readonly hooks: HomeHooks) {}

  /** The peers to try for `fp`, in order: its record's, then the hint (the hint first with `hintFirst`). */
  peersOf(fp: string, hint: string, hintFirst = false): string[] {
    const rec = this.ctx.s.homes?.[fp];
    const list = rec ? rec.peers.slice(0, this.ctx.o.homePeersMax) : [];
    if (hintFirst) return [hint, ...list.filter((p) => p !== hint)];
    if (!list.includes(hint)) list.push(hint);
    return list;
  }

  /** The peer to send to `fp` now; undefined when every peer of its home is down. */
  peerFor(now: number, fp: string, hint: string, hintFirst = false): string | undefined {
    const st = this.state.get(fp);
    const list = this.peersOf(fp, hint, hintFirst);
    if (!st) return list[0];
    const up = list.filter((p) => !this.recent(now, st.down, p));
    return up.find((p) => !this.isAway(now, st, p)) ?? up[0];
  }

  /**
   * `peerKey` did not answer DELIVERs to `fp`: resolve again. Returns the next peer that is not
   * down, or undefined when every one is (the recipient is unreachable).
   */
  failed(now: number, fp: string, hint: string, peerKey: string, hintFirst = false): string | undefined {
    const st = this.stateOf(fp);
    st.down.set(peerKey, now);
    this.ask(now, fp);
    return this.peerFor(now, fp, hint, hintFirst);
  }

  /** The peer after `peerKey` in `fp`'s home, in turn (the first after the last): an unreachable recipient's next try. */
  nextInTurn(fp: string, hint: string, peerKey: string, hintFirst = false): string {
    const list = this.peersOf(fp, hint, hintFirst);
    return list[(list.indexOf(peerKey) + 1) % list.length]!;
  }

  /** `peerKey` answered HELD for `fp` (not connected there): resolve again; the next peer if there is one not away. */
  notThere(now: number, fp: string, hint: string, peerKey: string, hintFirst = false): string | undefined {
    const st = this.stateOf(fp);
    st.away.set(peerKey, now);
    st.down.delete(peerKey);
    this.ask(now, fp);
    const next = this.peerFor(now, fp, hint, hintFirst);
    return next !== peerKey ? next : undefined;
  }

  /** `peerKey` answered a DELIVER to `fp`: it is up. */
  answered(fp: string, peerKey: string): void {
    const st = this.state.get(fp);
    if (!st || !st.down.delete(peerKey)) return;
    this.tidy(fp, st);
  }

  /**
   * The embedding's answer to a resolution of `fp`: a record (checked by the embedding), or
   * null when none was found. True when the record was taken (newer than the one held).
   */
  resolved(now: number, fp: string, record: HomeRecord | null): boolean {
    if (typeof fp !== 'string' || !/^[0-9a-f]{64}$/.test(fp)) throw new UsageError('PEERPOST_CONTACT_FINGERPRINT', 'fingerprint must be 64 lowercase hex characters');
    const st = this.state.get(fp);
    if (st?.resolvingUntil !== undefined) {
      delete st.resolvingUntil;
      this.inFlight--;
      const i = this.requests.indexOf(fp);
      if (i >= 0) this.requests.splice(i, 1);
    }
    if (record === null) {
      if (st) this.tidy(fp, st);
      return false;
    }
    const peers = checkRecord(fp, record);
    const homes = (this.ctx.s.homes ??= {});
    const old = homes[fp];
    if (old && record.seq <= old.seq) {
      if (st) this.tidy(fp, st);
      return false;
    }
    delete homes[fp];
    homes[fp] = { peers: peers.slice(0, this.ctx.o.homePeersMax), seq: record.seq, timeMs: record.timeMs };
    const keys = Object.keys(homes);
    for (let i = 0; i < keys.length - this.ctx.o.homesMax; i++) delete homes[keys[i]!];
    this.ctx.dirty = true;
    // A new home: its transfers go to its first peer that did not fail us in the last
    // homeResolveIntervalMs (the marks stay: a record that still lists a silent peer first must
    // not send everything back to it).
    this.hooks.rehome(now, fp);
    return true;
  }

  /** Whether a resolution of `fp`'s home is asked for and not answered yet. */
  resolving(fp: string): boolean {
    return this.state.get(fp)?.resolvingUntil !== undefined;
  }

  /** The next fingerprint whose home the embedding should resolve. */
  pollRequest(): string | undefined {
    return this.requests.shift();
  }

  /** The `home` timer. */
  deadline(): number | undefined {
    let at: number | undefined;
    for (const st of this.state.values()) {
      if (st.resolvingUntil !== undefined) at = earlier(at, st.resolvingUntil);
      if (st.askAt !== undefined) at = earlier(at, st.askAt);
    }
    return at;
  }

  handleTimeout(now: number): void {
    for (const [fp, st] of [...this.state]) {
      if (st.resolvingUntil !== undefined && st.resolvingUntil <= now) this.resolved(now, fp, null);
      if (st.askAt !== undefined && st.askAt <= now) {
        delete st.askAt;
        this.ask(now, fp);
      }
    }
  }

  /** Ask for `fp`'s record, unless asked lately, already asked, or homeResolutionsMax are out. */
  private ask(now: number, fp: string): void {
    if (!this.enabled) return;
    const st = this.stateOf(fp);
    if (st.resolvingUntil !== undefined) return;
    if (st.askedAtMs !== undefined && now - st.askedAtMs < this.ctx.o.homeResolveIntervalMs) {
      st.askAt ??= st.askedAtMs + this.ctx.o.homeResolveIntervalMs;
      return;
    }
    if (this.inFlight >= this.ctx.o.homeResolutionsMax) {
      this.ctx.drops.add('home_resolutions_full');
      return;
    }
    st.askedAtMs = now;
    st.resolvingUntil = now + this.ctx.o.homeResolveTimeoutMs;
    this.inFlight++;
    this.requests.push(fp);
  }

  private isAway(now: number, st: HomeState, p: string): boolean {
    return this.recent(now, st.away, p);
  }

  /** Whether `p` was marked in `marks` less than homeResolveIntervalMs ago (an older mark is forgotten). */
  private recent(now: number, marks: Map<string, number>, p: string): boolean {
    const at = marks.get(p);
    if (at === undefined) return false;
    if (now - at < this.ctx.o.homeResolveIntervalMs) return true;
    marks.delete(p);
    return false;
  }

  private stateOf(fp: string): HomeState {
    let st = this.state.get(fp);
    if (!st) {
      st = { down: new Map(), away: new Map() };
      this.state.set(fp, st);
    }
    return st;
  }

  /** Forget a recipient's state when nothing in it matters any more (its resolve rate is kept while it is recent). */
  private tidy(fp: string, st: HomeState): void {
    if (st.down.size > 0 || st.away.size > 0 || st.resolvingUntil !== undefined || st.askAt !== undefined) return;
    this.state.delete(fp);
  }
}

/** The peers of a record as host:port, after checking its shape against `fp`. */
function checkRecord(fp: string, r: HomeRecord): string[] {
  if (!r || typeof r !== 'object' || !(r.fingerprint instanceof Uint8Array) || hex(r.fingerprint) !== fp) {
    throw new UsageError('PEERPOST_HOME_RECORD', 'the home record is not for this fingerprint');
  }
  if (!Number.isSafeInteger(r.seq) || r.seq < 0 || !Number.isFinite(r.timeMs)) throw new UsageError('PEERPOST_HOME_RECORD', 'the home record has a bad seq or time');
  if (!Array.isArray(r.peers) || r.peers.length === 0) throw new UsageError('PEERPOST_HOME_RECORD', 'the home record lists no peer');
  const out: string[] = [];
  for (const p of r.peers) {
    const a = p && typeof p.host === 'string' && Number.isInteger(p.port) ? parseAddr(addrKey({ host: p.host, port: p.port })) : undefined;
    if (!a) throw new UsageError('PEERPOST_HOME_RECORD', 'the home record lists a bad peer address');
    const k = addrKey(a);
    if (!out.includes(k)) out.push(k);
  }
  return out;
}
