/**
 * Keepalives over real UDP at a registry of `clients` (1,000,000 in the full run): the peer runs in
 * a child process (keepalive-child.ts) whose registry is filled from a seed this process also
 * holds, so it knows every client's session id and client-to-peer key. Then it sends SESSION
 * KEEPALIVEs at `ratePerS` (40,000/s is 1,000,000 clients at one per 25 s) for `durationMs`,
 * client after client in a stride order, each with a new counter and a real MAC; a client asks for
 * an OK on every keepaliveAnswerEvery-th keepalive (client i starts at phase i mod that, so a
 * quarter ask, as in a steady state). The answers are checked (session, counter, MAC). Reported:
 * the peer's CPU over the sending window as a share of one core and per keepalive, and the peer's
 * drop counters for bad tags, replays and path probes, which must stay 0.
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { MsgType } from '../../src/protocol/constants.js';
import { decode } from '../../src/protocol/codec.js';
import { sealSession, sessionTagOk } from '../../src/crypto/session.js';
import { CLIENT_DEFAULTS } from '../../src/client/types.js';
import type { Addr } from '../../src/core/types.js';
import { Endpoint } from './endpoint.js';
import { SessionRecords } from './sessions.js';

export interface KeepaliveResult {
  clients: number;
  offeredPerS: number;
  sent: number;
  /** Keepalives the peer received (its datagram counter) over the window. */
  received: number;
  askedForAnswer: number;
  /** OKs that came back in the right session with a right MAC. */
  answers: number;
  /** Peer CPU over the sending window (user + system), percent of one core. */
  peerCpuPct: number;
  /** Peer CPU from the start until the last answer came back, per keepalive received. */
  peerUsPerKeepalive: number;
  generatorCpuPct: number;
  /** The peer's drops by reason that must stay 0 for the keepalives to count. */
  drops: { bad_session_tag: number; session_replay: number; path_probe: number; not_in_session: number };
  fillMs: number;
  peerRssBytes: number;
}

/** Sockets the clients share (client i sends from socket i mod SOCKETS, as clients behind NATs). */
const SOCKETS = 64;
const STRIDE = 7919;
const TICK_MS = 1;
const DRAIN_MS = 1000;

type Stats = { datagramsIn: number; drops: Record<string, number>; cpu: { user: number; system: number }; rss: number; registered: number };

export async function keepaliveOverUdp(here: string, clients: number, ratePerS: number, durationMs: number, log: (s: string) => void): Promise<KeepaliveResult> {
  const proc = fork(join(here, 'keepalive-child.ts'), [], { execArgv: ['--import', 'tsx', '--max-old-space-size=4096'] });
  const next = <T>(key: string): Promise<T> =>
    new Promise((resolve, reject) => {
      const on = (m: Record<string, unknown>): void => {
        if (!(key in m)) return;
        proc.off('message', on);
        resolve(m[key] as T);
      };
      proc.on('message', on);
      proc.once('exit', (code) => reject(new Error(`keepalive peer exited with ${code}`)));
    });
  const stats = (): Promise<Stats> => {
    const p = next<Stats>('stats');
    proc.send('stats');
    return p;
  };
  const address = await next<Addr>('address');
  const eps = await Promise.all(Array.from({ length: SOCKETS }, () => Endpoint.open(address)));
  const seed = randomBytes(32);
  const records = SessionRecords.make(seed, clients);
  const ports = eps.map((e) => e.socket.address().port);
  const filledP = next<{ registered: number; ms: number }>('filled');
  proc.send({ fill: { seed: [...seed], count: clients, host: '127.0.0.1', ports } });
  const filled = await filledP;
  if (filled.registered !== clients) throw new Error(`the peer registered ${filled.registered} of ${clients} clients`);
  log(`  ${clients.toLocaleString('en')} clients in the peer's registry in ${(filled.ms / 1000).toFixed(1)} s`);

  // Answers: an OK in the client's session, counter new, MAC right. Client c's session id is in
  // the records; the peer's counters start at 1 (0 was the registration's OK).
  const sidIndex = new Map<string, number>();
  const every = CLIENT_DEFAULTS.keepaliveAnswerEvery;
  let answers = 0;
  let badAnswers = 0;
  for (const ep of eps) {
    ep.onData = (data) => {
      const r = decode(data);
      if (!r.ok || r.msg.type !== MsgType.SESSION || r.msg.inner.type !== MsgType.OK) return void badAnswers++;
      const c = sidIndex.get(Buffer.from(r.msg.sessionId).toString('latin1'));
      if (c === undefined || !sessionTagOk(records.p2c(c), r.msg)) return void badAnswers++;
      answers++;
    };
  }
  const total = Math.floor((ratePerS * durationMs) / 1000);
  const sent = new Uint32Array(clients);
  let asked = 0;
  const sendOne = (k: number): void => {
    const c = (k * STRIDE) % clients;
    const counter = ++sent[c]!;
    const answer = (counter - 1 + c) % every === 0;
    if (answer) {
      asked++;
      sidIndex.set(records.sessionId(c).toString('latin1'), c);
    }
    eps[c % SOCKETS]!.send(sealSession(records.c2p(c), records.sessionId(c), counter, { type: MsgType.KEEPALIVE, answer }));
  };
  const s0 = await stats();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let k = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const due = Math.min(total, Math.floor(((performance.now() - t0) * ratePerS) / 1000));
      while (k < due) sendOne(k++);
      if (k >= total) resolve();
      else setTimeout(tick, TICK_MS);
    };
    tick();
  });
  const wall = performance.now() - t0;
  const s1 = await stats();
  const cpu = process.cpuUsage(cpu0);
  const drainEnd = performance.now() + DRAIN_MS;
  while (answers + badAnswers < asked && performance.now() < drainEnd) await new Promise((r) => setTimeout(r, 10));
  const s2 = await stats();
  await Promise.all(eps.map((e) => e.close()));
  await new Promise<void>((resolve) => {
    proc.once('exit', () => resolve());
    proc.send('exit');
  });
  if (badAnswers) throw new Error(`${badAnswers} answers to keepalives did not authenticate`);
  const peerCpuMs = (s1.cpu.user + s1.cpu.system - s0.cpu.user - s0.cpu.system) / 1000;
  const received = s2.datagramsIn - s0.datagramsIn;
  const d = (x: string): number => s2.drops[x] ?? 0;
  return {
    clients,
    offeredPerS: ratePerS,
    sent: total,
    received,
    askedForAnswer: asked,
    answers,
    peerCpuPct: Math.round((peerCpuMs / wall) * 1000) / 10,
    peerUsPerKeepalive: Math.round(((s2.cpu.user + s2.cpu.system - s0.cpu.user - s0.cpu.system) * 10) / Math.max(1, received)) / 10,
    generatorCpuPct: Math.round(((cpu.user + cpu.system) / 1000 / wall) * 100),
    drops: { bad_session_tag: d('bad_session_tag'), session_replay: d('session_replay'), path_probe: d('path_probe'), not_in_session: d('not_in_session') },
    fillMs: filled.ms,
    peerRssBytes: s2.rss,
  };
}
