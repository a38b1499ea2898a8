/**
 * The network simulator (test/sim) over many seeds: every run must keep every invariant (exactly
 * once or reported failed, right recipient, no hijacked registration, bounds held, messages reach
 * a client that changed its peers with no user action). SIM_SEEDS and
 * SIM_FROM change the range; a failing seed is printed with a trace and replays with
 * `SEED=<seed> npm run sim`.
 */
import t from 'tap';
import { CI_LIMITS, DEFAULT_LIMITS, runSeed, type SimLimits } from './sim/scenario.js';
import { explainFailure, formatSummary, runSeeds } from './sim/report.js';

const SEEDS = Number(process.env.SIM_SEEDS ?? 500);
const FROM = Number(process.env.SIM_FROM ?? 1);

t.test(`${SEEDS} seeded runs keep every invariant`, async (t) => {
  const failures: string[] = [];
  const s = runSeeds(FROM, SEEDS, CI_LIMITS, (r) => {
    if (r.violationCount > 0) failures.push(explainFailure(r, CI_LIMITS));
  });
  console.error(`simulator: ${formatSummary(s, true)}`);
  for (const f of failures) t.comment(f);
  t.equal(s.seeds, SEEDS, 'every seed ran');
  t.equal(s.violations, 0, `no invariant violated (failing seeds: ${s.failingSeeds.join(' ') || 'none'})`);
  t.ok(s.delivered > s.messages * 0.8, `most messages delivered (${s.delivered} of ${s.messages})`);
  t.ok(s.lost > 0 && s.duplicated > 0 && s.peerRestarts > 0 && s.clientRestarts > 0 && s.midExchange > 0 && s.moves > 0 && s.attackerRuns > 0, 'faults of every kind happened');
  t.ok(s.peerDeaths > 0 && s.peerReaddressed > 0 && s.peerChanges > 0 && s.probes > 0 && s.dhtLost > 0 && s.dhtStale > 0, 'home faults of every kind happened: peers dead or at a new address, clients changing peers, lost and stale lookups');
});

/** Fewer, larger runs: dozens of clients on up to five peers, for the full default active time. */
const LARGE_SEEDS = Number(process.env.SIM_LARGE_SEEDS ?? 10);
const LARGE_LIMITS: SimLimits = { ...DEFAULT_LIMITS, clientsMin: 24, clientsMax: 40 };

t.test(`${LARGE_SEEDS} seeded runs with 24 to 40 clients keep every invariant`, async (t) => {
  const failures: string[] = [];
  const s = runSeeds(100_001, LARGE_SEEDS, LARGE_LIMITS, (r) => {
    if (r.violationCount > 0) failures.push(explainFailure(r, LARGE_LIMITS));
  });
  console.error(`simulator, large runs: ${formatSummary(s, true)}`);
  for (const f of failures) t.comment(f);
  t.equal(s.seeds, LARGE_SEEDS, 'every seed ran');
  t.ok(s.clients >= 24 * LARGE_SEEDS, `dozens of clients per run (${s.clients} in ${s.seeds} runs)`);
  t.equal(s.violations, 0, `no invariant violated (failing seeds: ${s.failingSeeds.join(' ') || 'none'})`);
  t.ok(s.delivered > s.messages * 0.8, `most messages delivered (${s.delivered} of ${s.messages})`);
});

t.test('a seed replays the same run', async (t) => {
  const a = runSeed({ seed: 4242, limits: CI_LIMITS });
  const b = runSeed({ seed: 4242, limits: CI_LIMITS });
  t.same({ ...b, trace: [] }, { ...a, trace: [] }, 'same result, datagram for datagram');
  const c = runSeed({ seed: 4243, limits: CI_LIMITS });
  t.not(c.datagrams, a.datagrams, 'another seed is another run');
});
