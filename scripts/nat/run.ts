/**
 * Real-NAT tests: the built CLI (dist/cli/main.js) as peers and clients in network namespaces,
 * clients behind Linux NAT routers (MASQUERADE, short conntrack UDP timeouts), with loss, a
 * changed mapping and a killed peer. Needs root (ip netns, iptables, conntrack).
 *
 *   node --import tsx scripts/nat/run.ts [--only ab,c,d,e]      (npm run test:nat)
 *
 * Environment: PP_NAT_LOSS_MESSAGES (scenario (c), default 100), PP_NAT_LOG_LEVEL (e.g. debug:
 * --log-level of every process), PP_NAT_DUMP=FILE (write each scenario's events and logs to
 * FILE.<key>), PP_NS_PREFIX (namespace name prefix, default pp).
 *
 * Prints the figures of each scenario and exits 1 if any check failed (2 if it cannot run).
 * Every scenario has a hard time bound; the namespaces and processes are removed at the end, on
 * failure and on SIGINT/SIGTERM too.
 */
import { ensureBuilt } from '../../test/helpers/cli.js';
import { now } from './ns-process.js';
import { netnsDown } from './net.js';
import { CONNTRACK_UDP_TIMEOUT_S, LOSS_DEADLINE_MS, SCENARIOS, type Scenario, type ScenarioResult } from './scenarios.js';
import { World } from './world.js';

/** Bound for the whole run (longer when PP_NAT_LOSS_MESSAGES asks for a longer scenario (c)). */
const RUN_CAP_MS = 15 * 60_000 + Math.max(0, LOSS_DEADLINE_MS - 300_000);

let current: World | undefined;

async function cleanup(): Promise<void> {
  const w = current;
  current = undefined;
  if (w) await w.close().catch(() => undefined);
  else netnsDown();
}

async function runOne(s: Scenario): Promise<ScenarioResult & { ms: number }> {
  const start = now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const w = new World(s.hosts, CONNTRACK_UDP_TIMEOUT_S);
    current = w;
    const capped = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`scenario ${s.key} exceeded its bound of ${s.capMs / 1000} s`)), s.capMs);
    });
    const r = await Promise.race([s.run(w), capped]);
    if (process.env.PP_NAT_DUMP) w.dump(`${process.env.PP_NAT_DUMP}.${s.key}`);
    return { ...r, ms: now() - start };
  } catch (e) {
    return { figures: {}, failures: [`error: ${(e as Error).message}`], ms: now() - start };
  } finally {
    clearTimeout(timer);
    await cleanup();
  }
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('scripts/nat/run.ts needs root (ip netns, iptables, conntrack)\n');
    return 2;
  }
  const i = process.argv.indexOf('--only');
  const only = i >= 0 ? (process.argv[i + 1] ?? '').split(',') : undefined;
  const chosen = SCENARIOS.filter((s) => !only || only.includes(s.key));
  if (!chosen.length) {
    process.stderr.write(`no scenario matches; keys: ${SCENARIOS.map((s) => s.key).join(', ')}\n`);
    return 2;
  }
  ensureBuilt();
  const cap = setTimeout(() => {
    process.stderr.write(`real-NAT run exceeded ${RUN_CAP_MS / 60_000} min; stopping\n`);
    void cleanup().finally(() => process.exit(1));
  }, RUN_CAP_MS);
  cap.unref();
  const runStart = now();
  let failed = 0;
  for (const s of chosen) {
    process.stdout.write(`\n== ${s.title}\n`);
    const r = await runOne(s);
    for (const [k, v] of Object.entries(r.figures)) process.stdout.write(`   ${k}: ${JSON.stringify(v)}\n`);
    if (r.failures.length) {
      failed++;
      for (const f of r.failures) process.stdout.write(`   FAIL ${f}\n`);
    }
    process.stdout.write(`   ${r.failures.length ? 'FAILED' : 'ok'} (${(r.ms / 1000).toFixed(1)} s)\n`);
  }
  clearTimeout(cap);
  process.stdout.write(`\nreal-NAT: ${chosen.length - failed}/${chosen.length} scenarios passed in ${((now() - runStart) / 1000).toFixed(1)} s\n`);
  return failed ? 1 : 0;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    void cleanup().finally(() => process.exit(130));
  });
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  async (e: unknown) => {
    process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
    await cleanup();
    process.exitCode = 1;
  },
);
