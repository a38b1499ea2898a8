/**
 * Runs many seeds and sums them up: the summary printed by `npm run sim` and by test/sim.test.ts,
 * and the report of a failing seed (its violations and the trace of the first messages involved,
 * from a second, traced run of the same seed).
 */
import { runSeed, type RunResult, type SimLimits } from './scenario.js';

export interface Summary {
  seeds: number;
  failingSeeds: number[];
  violations: number;
  violationsByKind: Record<string, number>;
  peers: number;
  clients: number;
  messages: number;
  byKind: Record<string, number>;
  delivered: number;
  failed: Record<string, number>;
  failedShown: number;
  failedReachable: number;
  sendRefused: Record<string, number>;
  datagrams: number;
  lost: number;
  duplicated: number;
  unroutable: number;
  peerRestarts: number;
  clientRestarts: number;
  midExchange: number;
  sessionRestarts: number;
  offline: number;
  moves: number;
  gone: number;
  peerDeaths: number;
  peerReaddressed: number;
  peerChanges: number;
  probes: number;
  dhtLookups: number;
  dhtLost: number;
  dhtStale: number;
  attackerRuns: number;
  attackerSent: number;
  rejected: Record<string, number>;
  registrations: number;
  virtualMs: number;
  steps: number;
  wallMs: number;
  cpuMs: number;
}

export function emptySummary(): Summary {
  return {
    seeds: 0, failingSeeds: [], violations: 0, violationsByKind: {}, peers: 0, clients: 0, messages: 0, byKind: {}, delivered: 0,
    failed: {}, failedShown: 0, failedReachable: 0, sendRefused: {}, datagrams: 0, lost: 0, duplicated: 0, unroutable: 0, peerRestarts: 0,
    clientRestarts: 0, midExchange: 0, sessionRestarts: 0, offline: 0, moves: 0, gone: 0, peerDeaths: 0, peerReaddressed: 0, peerChanges: 0, probes: 0, dhtLookups: 0, dhtLost: 0, dhtStale: 0, attackerRuns: 0, attackerSent: 0, rejected: {}, registrations: 0,
    virtualMs: 0, steps: 0, wallMs: 0, cpuMs: 0,
  };
}

function addTo(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

export function add(s: Summary, r: RunResult): void {
  s.seeds++;
  if (r.violationCount > 0) s.failingSeeds.push(r.seed);
  s.violations += r.violationCount;
  for (const v of r.violations) s.violationsByKind[v.kind] = (s.violationsByKind[v.kind] ?? 0) + 1;
  s.peers += r.peers;
  s.clients += r.clients;
  s.messages += r.messages;
  addTo(s.byKind, r.byKind);
  s.delivered += r.delivered;
  addTo(s.failed, r.failed);
  s.failedShown += r.failedShown;
  s.failedReachable += r.failedReachable;
  addTo(s.sendRefused, r.sendRefused);
  s.datagrams += r.datagrams;
  s.lost += r.lost;
  s.duplicated += r.duplicated;
  s.unroutable += r.unroutable;
  s.peerRestarts += r.peerRestarts;
  s.clientRestarts += r.clientRestarts;
  s.midExchange += r.midExchange;
  s.sessionRestarts += r.sessionRestarts;
  s.offline += r.offline;
  s.moves += r.moves;
  s.gone += r.gone;
  s.peerDeaths += r.peerDeaths;
  s.peerReaddressed += r.peerReaddressed;
  s.peerChanges += r.peerChanges;
  s.probes += r.probes;
  s.dhtLookups += r.dht.lookups;
  s.dhtLost += r.dht.lost;
  s.dhtStale += r.dht.stale;
  if (r.attacker) s.attackerRuns++;
  s.attackerSent += r.attackerSent;
  addTo(s.rejected, r.rejected);
  s.registrations += r.registrations;
  s.virtualMs += r.virtualMs;
  s.steps += r.steps;
}

const n = (x: number): string => x.toLocaleString('en-US');
const dict = (d: Record<string, number>): string => {
  const e = Object.entries(d).sort((a, b) => b[1] - a[1]);
  return e.length ? e.map(([k, v]) => `${k} ${n(v)}`).join(', ') : 'none';
};
const hours = (ms: number): string => `${(ms / 3600_000).toFixed(1)} h`;

export function formatSummary(s: Summary, withWall: boolean): string {
  const failedTotal = Object.values(s.failed).reduce((a, b) => a + b, 0);
  const lines = [
    `seeds ${n(s.seeds)}: ${n(s.peers)} peers, ${n(s.clients)} clients`,
    `messages ${n(s.messages)} (${dict(s.byKind)})`,
    `delivered ${n(s.delivered)}, failed ${n(failedTotal)} (${dict(s.failed)}; shown anyway ${n(s.failedShown)}; both ends reachable ${n(s.failedReachable)}), send refused: ${dict(s.sendRefused)}`,
    `datagrams ${n(s.datagrams)}: lost ${n(s.lost)}, duplicated ${n(s.duplicated)}, unroutable ${n(s.unroutable)}`,
    `restarts: ${n(s.peerRestarts)} peer, ${n(s.clientRestarts)} client (${n(s.midExchange)} mid-exchange); offline ${n(s.offline)}, moves ${n(s.moves)}, gone ${n(s.gone)}; registrations ${n(s.registrations)}`,
    `homes: peers dead for good ${n(s.peerDeaths)}, at a new address ${n(s.peerReaddressed)}; clients changing peers ${n(s.peerChanges)}; messages to moved clients ${n(s.probes)}; lookups ${n(s.dhtLookups)} (lost ${n(s.dhtLost)}, stale ${n(s.dhtStale)})`,
    `attacker in ${n(s.attackerRuns)} runs, ${n(s.attackerSent)} attempts; pushes rejected by recipients: ${dict(s.rejected)}; ratcheted sessions restarted ${n(s.sessionRestarts)}`,
    `virtual time ${hours(s.virtualMs)}, ${n(s.steps)} steps${withWall ? `, wall time ${(s.wallMs / 1000).toFixed(1)} s, CPU ${(s.cpuMs / 1000).toFixed(1)} s` : ''}`,
    `violations ${n(s.violations)}${s.violations ? ` (${dict(s.violationsByKind)}) in seeds ${s.failingSeeds.join(' ')}` : ''}`,
  ];
  return lines.join('\n');
}

export function formatRun(r: RunResult): string {
  const f = r.faults;
  const failed = Object.values(r.failed).reduce((a, b) => a + b, 0);
  return [
    `seed ${r.seed}: ${r.peers} peers, ${r.clients} clients${r.attacker ? ', attacker' : ''}; loss ${(f.loss * 100).toFixed(1)}%, duplicate ${(f.duplicate * 100).toFixed(1)}%, reorder ${(f.reorder * 100).toFixed(1)}% (+${f.reorderMs} ms), delay ${f.delayMs}+${f.jitterMs} ms`,
    `  messages ${r.messages}: delivered ${r.delivered}, failed ${failed}${failed ? ` (${dict(r.failed)}; both ends reachable ${r.failedReachable})` : ''}; datagrams ${r.datagrams}, lost ${r.lost}; restarts ${r.peerRestarts} peer / ${r.clientRestarts} client, offline ${r.offline}, moves ${r.moves}, gone ${r.gone}; virtual ${(r.virtualMs / 60_000).toFixed(1)} min, ${r.steps} steps`,
  ].join('\n');
}

/** The violations of a failing run, and a traced replay of its first messages. */
export function explainFailure(r: RunResult, limits: Partial<SimLimits>): string {
  const out = [`FAIL seed ${r.seed}: ${r.violationCount} violation(s); replay with SEED=${r.seed} npm run sim`];
  for (const v of r.violations) out.push(`  [${v.kind}] +${((v.atMs - Date.UTC(2026, 0, 1)) / 1000).toFixed(3)}s ${v.detail}`);
  const keys = [...new Set(r.violations.map((v) => v.key).filter((k): k is string => !!k))].slice(0, 2);
  if (keys.length === 0) return out.join('\n');
  out.push(traceMessages(r, keys, limits));
  return out.join('\n');
}

/** Replay a run with a trace of the messages `keys` (`senderFp:id`). */
export function traceMessages(r: RunResult, keys: string[], limits: Partial<SimLimits>): string {
  const ids = new Set(keys.flatMap((k) => r.partIds[k] ?? [k.split(':')[1]!]));
  const again = runSeed({ seed: r.seed, limits, trace: { keys: new Set(keys), ids } });
  const out: string[] = [];
  if (again.violationCount !== r.violationCount || again.datagrams !== r.datagrams) out.push('  (the traced replay differs: the run is not deterministic)');
  out.push(`  trace of ${keys.map((k) => k.split(':')[1]!.slice(0, 12)).join(', ')}:`, ...again.trace);
  return out.join('\n');
}

/** Run `count` seeds from `from`; `onRun` sees each result. */
export function runSeeds(from: number, count: number, limits: Partial<SimLimits>, onRun?: (r: RunResult) => void): Summary {
  const s = emptySummary();
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  for (let i = 0; i < count; i++) {
    const r = runSeed({ seed: (from + i) >>> 0, limits });
    add(s, r);
    onRun?.(r);
  }
  s.wallMs = performance.now() - t0;
  const c = process.cpuUsage(c0);
  s.cpuMs = (c.user + c.system) / 1000;
  return s;
}
