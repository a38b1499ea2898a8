/**
 * The simulator's command line.
 *   npm run sim                          100 seeds from 1
 *   npm run sim -- --seeds 500 --from 7  500 seeds from 7
 *   SEED=42 npm run sim                  one seed, in detail: replays that run exactly
 * Options: --ci (the test suite's smaller runs), --clients-max N (default 24), --verbose (one line per seed), --trace-failed (with SEED:
 * trace a message that failed although both its ends were reachable).
 * Exit code 1 when any seed breaks an invariant; the failing seeds are printed with a trace.
 */
import { parseArgs } from 'node:util';
import { CI_LIMITS, runSeed, type SimLimits } from './scenario.js';
import { explainFailure, formatRun, formatSummary, runSeeds, traceMessages } from './report.js';

const { values } = parseArgs({
  options: {
    seeds: { type: 'string', default: '100' },
    from: { type: 'string', default: '1' },
    'clients-max': { type: 'string' },
    verbose: { type: 'boolean', default: false },
    ci: { type: 'boolean', default: false },
    'trace-failed': { type: 'boolean', default: false },
  },
  strict: true,
});

function int(name: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!Number.isInteger(x) || x < min) {
    console.error(`peerpost sim: --${name} must be an integer >= ${min}`);
    process.exit(2);
  }
  return x;
}

const limits: Partial<SimLimits> = values.ci ? { ...CI_LIMITS } : {};
const clientsMax = int('clients-max', values['clients-max'], 6);
if (clientsMax !== undefined) limits.clientsMax = clientsMax;

const single = process.env.SEED;
if (single !== undefined && single !== '') {
  const seed = int('SEED', single, 0)!;
  const r = runSeed({ seed, limits });
  console.log(formatRun(r));
  if (r.violationCount > 0) {
    console.log(explainFailure(r, limits));
    process.exitCode = 1;
  } else console.log('  no violations');
  if (values['trace-failed'] && r.failedReachableKeys.length > 0) {
    console.log(`failed although both ends were reachable: ${r.failedReachableKeys.length}`);
    console.log(traceMessages(r, r.failedReachableKeys.slice(0, 1), limits));
  }
} else {
  const seeds = int('seeds', values.seeds, 1)!;
  const from = int('from', values.from, 0)!;
  const failures: string[] = [];
  const s = runSeeds(from, seeds, limits, (r) => {
    if (values.verbose) console.log(formatRun(r));
    if (r.violationCount > 0) {
      const text = explainFailure(r, limits);
      failures.push(text);
      console.log(text);
    }
  });
  console.log(formatSummary(s, true));
  if (failures.length > 0) process.exitCode = 1;
}
