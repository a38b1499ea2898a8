/**
 * `npm run bench`: peerpost's benchmarks on loopback, in one run. Prints a table and writes the
 * results as JSON (default ./bench-results.json; `--out FILE`; `--quick` for a short smoke run).
 *
 *   relay       peer CPU per relayed message through Peer.handle() in process; then
 *               messages/s one peer relays end to end (DELIVER, PUSH, ACK, RESULT 200), peer in a
 *               child process, load generator in this one; the offered rate is stepped up until
 *               loss reaches 0.1% or the median latency passes 10 ms (a growing queue); latency
 *               p50/p99 at half the highest passing rate. Recipients run real sessions and
 *               senders send with capabilities (scripts/bench/relay.ts).
 *   baseline    the same relay measurement of the code before protocol 2 (commit 1b554c2, taken
 *               from git history into a temporary directory, its own peer and load generator),
 *               run in turn with the current code's, and the ratio of the two
 *   forwarder   the same datagrams through a plain dgram forwarder: the runtime's ceiling
 *   register    full registrations/s with distinct certificates (first time, then again)
 *   memory      RSS per registered client at 100,000 and 1,000,000 clients (child process)
 *   keepalive   SESSION KEEPALIVEs through Peer.handle() with 1,000,000 registered clients; then
 *               over UDP to a peer in a child process with 1,000,000 clients in its registry, at
 *               40,000/s (one per client per 25 s), a quarter asking for an answer: the peer's
 *               CPU as a share of one core
 *   store       the client's persistence cost per message with 100 / 10,000 / 100,000 messages
 *               stored, JSON file against SQLite; one node's burst of 1,000 messages to another
 *               with 100,000 stored in each (scripts/bench/store.ts). `--store-only` runs just this.
 *   ratchet     end-to-end encryption per message: bytes on the wire and CPU to send and to open,
 *               sealed to the recipient's certificate (the form before ratcheted sessions, still
 *               that of a first message) against a ratcheted session, one direction and in turns
 *               (a DH step per message), at 20 / 300 / 800-byte bodies (scripts/bench/ratchet.ts).
 *               `--ratchet-only` runs just this.
 *   home dht    home records on a private HyperDHT of 10 nodes on 127.0.0.1: publish and resolve
 *               time (p50/p99 over 100 resolutions) and the record's size (scripts/bench/home-dht.ts).
 *               `--dht-only` runs just this.
 * `--relay-only` runs just the relay of the current code against the code before protocol 2.
 * `--keepalive-only` runs just the keepalives over UDP (1,000,000 clients, 1 in --quick: 20,000).
 * See docs/BENCHMARKS.md for the method and the figures.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';
import { BLOB_MAX_BYTES } from '../src/protocol/constants.js';
import { SEAL_BUCKETS_BYTES, SEAL_BODY_MAX_BYTES, SEAL_LENGTH_PREFIX_BYTES, SEAL_OVERHEAD_BYTES } from '../src/crypto/seal.js';
import type { Addr } from '../src/core/types.js';
import { loadCerts } from './bench/certs.js';
import { RelayLoad, type RelayMode, type RelayStep } from './bench/relay.js';
import { registrationBreakdown, registrationKeys, registrationRun, type RegistrationRun } from './bench/register.js';
import type { MemoryResult } from './bench/memory-child.js';
import { registerInProcess } from './bench/register-inproc.js';
import { relayInProcess } from './bench/relay-inproc.js';
import { BASELINE_COMMIT, prepareBaseline, type Baseline } from './bench/baseline.js';
import { keepaliveOverUdp, type KeepaliveResult } from './bench/keepalive.js';
import { burst, persistenceCost, type BurstResult, type PersistencePoint } from './bench/store.js';
import { ratchetCost, type RatchetCost } from './bench/ratchet.js';
import { homeDhtBench, type HomeDhtResult } from './bench/home-dht.js';

function homeDhtRows(h: HomeDhtResult): [string, string, string][] {
  return [
    [`home record publish (testnet of ${h.nodes} on loopback)`, `p50 ${h.publishMs.p50} ms, p99 ${h.publishMs.p99} ms over ${h.publishes}`, ''],
    [`home record resolve (lookup, fetch, verify)`, `p50 ${h.resolveMs.p50} ms, p99 ${h.resolveMs.p99} ms over ${h.resolutions}`, ''],
    ['home record size (DHT value)', `${h.valueBytesOnePeer} B with 1 peer, ${h.valueBytesMaxPeers} B with 8 IPv6 peers`, '<= 1,000 B'],
  ];
}

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const storeOnly = args.includes('--store-only');
const ratchetOnly = args.includes('--ratchet-only');
const dhtOnly = args.includes('--dht-only');
const relayOnly = args.includes('--relay-only');
const keepaliveOnly = args.includes('--keepalive-only');
const outAt = args.indexOf('--out');
const outFile = outAt >= 0 ? args[outAt + 1] : './bench-results.json';
if (!outFile) throw new Error('--out needs a file name');

const P = quick
  ? { stepMs: 400, startRate: 2000, stepFactor: 1.5, latencyMs: 800, regCount: 1500, regCerts: 20_000, memCounts: [20_000], memSet: 20_000, keepalives: 200_000, breakdownN: 300, relayInProcess: 50_000, udpKeepaliveClients: 20_000, udpKeepaliveMs: 2000 }
  : { stepMs: 2000, startRate: 2000, stepFactor: 1.2, latencyMs: 3000, regCount: 8000, regCerts: 20_000, memCounts: [100_000, 1_000_000], memSet: 1_000_000, keepalives: 1_000_000, breakdownN: 2000, relayInProcess: 400_000, udpKeepaliveClients: 1_000_000, udpKeepaliveMs: 10_000 };
/** One keepalive per client per 25 s at 1,000,000 clients. */
const UDP_KEEPALIVE_PER_S = 40_000;
const SENDERS = 16;
const RECIPIENTS = 16;
const REGISTER_CONCURRENCY = 64;
const STEPS_MAX = 30;
const LOSS_MAX_PCT = 0.1;
/** A step also fails when fewer than this share of the offered rate arrives on time. */
const DELIVERED_SHARE_MIN = 0.95;
/**
 * A step also fails when its median latency exceeds this: a queue is growing in the socket
 * buffers (4 MiB hold about half a second of datagrams at these rates), so the offered rate is
 * above what the server sustains even though a 2 s step loses nothing yet.
 */
const P50_MAX_US = 10_000;

/** Blob size (a SEAL_BUCKETS_BYTES bucket) that sealing a body of `bodyBytes` produces; larger bodies are chunked into full blobs. */
function blobBytesFor(bodyBytes: number): number {
  const innerFixed = BLOB_MAX_BYTES - SEAL_OVERHEAD_BYTES - SEAL_LENGTH_PREFIX_BYTES - SEAL_BODY_MAX_BYTES;
  const need = Math.min(bodyBytes, SEAL_BODY_MAX_BYTES) + innerFixed + SEAL_OVERHEAD_BYTES + SEAL_LENGTH_PREFIX_BYTES;
  return SEAL_BUCKETS_BYTES.find((b) => b >= need) ?? BLOB_MAX_BYTES;
}

interface Child {
  proc: ChildProcess;
  address: Addr;
  stats(): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

async function spawnServer(kind: 'peer' | 'forwarder', script = join(here, 'bench', 'server-child.ts')): Promise<Child> {
  const proc = fork(script, [kind], { execArgv: ['--import', 'tsx'] });
  const address = await new Promise<Addr>((resolve, reject) => {
    proc.once('error', reject);
    proc.once('message', (m: { address: Addr }) => resolve(m.address));
  });
  return {
    proc,
    address,
    stats: () =>
      new Promise((resolve) => {
        proc.once('message', (m: { stats: Record<string, unknown> }) => resolve(m.stats));
        proc.send('stats');
      }),
    stop: () =>
      new Promise((resolve) => {
        proc.once('exit', () => resolve());
        proc.send('exit');
      }),
  };
}

function log(s: string): void {
  process.stderr.write(`${s}\n`);
}

function cpuMs(s: Record<string, unknown>): number {
  const c = s.cpu as { user: number; system: number };
  return (c.user + c.system) / 1000;
}

/** Whose peer and load generator a relay run measures. */
interface RelayTarget {
  /** 'sessions': this checkout; 'baseline': BASELINE_COMMIT; 'forwarder': the plain forwarder. */
  name: 'sessions' | 'baseline' | 'forwarder';
  serverScript?: string;
  /** Sessions: one ACK per PUSH, at once (like for like with the baseline's clients), instead of the pushes of one turn together. */
  ackEach?: boolean;
  Load: Pick<typeof RelayLoad, 'setup'>;
}

interface RelayResult {
  name: RelayTarget['name'];
  mode: RelayMode;
  bodyBytes: number;
  blobBytes: number;
  datagramBytes: { deliver: number; ack: number };
  steps: Array<RelayStep & { serverCpuPct: number }>;
  maxMessagesPerS: number;
  maxDatagramsPerS: number;
  latency: RelayStep & { serverCpuPct: number };
  /** CPU per relayed message of each process at the highest passing rate (user + system). */
  cpuAtTop: { serverUsPerMessage: number; generatorUsPerMessage: number } | undefined;
  /** Sessions only: message ids per ACK datagram over the whole run (pushes of one turn acknowledged together). */
  idsPerAck?: number;
}

/** Microseconds of CPU per operation from a CPU share in percent and operations per second. */
function usPerOp(cpuPct: number, perS: number): number {
  return perS > 0 ? Math.round((cpuPct * 1e4) / perS) : 0;
}

async function relay(target: RelayTarget, bodyBytes: number, certs: Awaited<ReturnType<typeof loadCerts>>, firstCert: number): Promise<RelayResult> {
  const mode: RelayMode = target.name === 'forwarder' ? 'forwarder' : 'peer';
  const name = target.name;
  const server = await spawnServer(mode, target.serverScript);
  const blobBytes = blobBytesFor(bodyBytes);
  const load = await target.Load.setup(mode, server.address, blobBytes, SENDERS, RECIPIENTS, certs, firstCert, target.ackEach);
  const step = async (rate: number, ms: number): Promise<RelayStep & { serverCpuPct: number }> => {
    const s0 = await server.stats();
    const t0 = performance.now();
    const r = await load.run(rate, ms);
    const s1 = await server.stats();
    return { ...r, serverCpuPct: Math.round(((cpuMs(s1) - cpuMs(s0)) / (performance.now() - t0)) * 100) };
  };
  const ok = (r: RelayStep): boolean => r.lossPct < LOSS_MAX_PCT && r.deliveredPerS >= DELIVERED_SHARE_MIN * r.offeredPerS && r.p50Us <= P50_MAX_US;
  await step(1000, 300); // warm-up
  const steps: RelayResult['steps'] = [];
  let rate = P.startRate;
  let best = 0;
  let failedAt = 0;
  for (let i = 0; i < STEPS_MAX; i++) {
    const r = await step(Math.round(rate), P.stepMs);
    steps.push(r);
    log(`  ${name} body ${bodyBytes}: offered ${r.offeredPerS}/s delivered ${r.deliveredPerS}/s loss ${r.lossPct.toFixed(3)}% p50 ${r.p50Us} us p99 ${r.p99Us} us cpu server ${r.serverCpuPct}% generator ${r.generatorCpuPct}%`);
    if (!ok(r)) {
      failedAt = r.offeredPerS;
      break;
    }
    best = r.offeredPerS;
    rate *= P.stepFactor;
  }
  if (best && failedAt) {
    await new Promise((r) => setTimeout(r, 500));
    const mid = Math.round((best + failedAt) / 2);
    const r = await step(mid, P.stepMs);
    steps.push(r);
    log(`  ${name} body ${bodyBytes}: offered ${r.offeredPerS}/s delivered ${r.deliveredPerS}/s loss ${r.lossPct.toFixed(3)}% p50 ${r.p50Us} us (refine)`);
    if (ok(r)) best = mid;
  }
  await new Promise((r) => setTimeout(r, 500));
  const latency = await step(Math.max(500, Math.round(best / 2)), P.latencyMs);
  log(`  ${name} body ${bodyBytes}: at ${latency.offeredPerS}/s p50 ${latency.p50Us} us p99 ${latency.p99Us} us loss ${latency.lossPct.toFixed(3)}%`);
  if (name === 'sessions') {
    // Every PUSH authenticated at the recipients, every ACK and capability accepted by the peer.
    const faults = (load as RelayLoad).faults;
    const drops = (await server.stats()).drops as Record<string, number>;
    const bad = { ...faults, ...Object.fromEntries(['bad_session_tag', 'session_replay', 'bad_capability', 'capability_unchecked', 'not_in_session'].map((k) => [k, drops[k] ?? 0])) };
    if (Object.values(bad).some((v) => v !== 0)) throw new Error(`relay run with sessions was not clean: ${JSON.stringify(bad)}`);
  }
  const acks = name === 'sessions' ? (load as RelayLoad).ackStats : undefined;
  const idsPerAck = acks && acks.datagrams ? Math.round((acks.ids / acks.datagrams) * 100) / 100 : undefined;
  if (idsPerAck !== undefined) log(`  ${name} body ${bodyBytes}: ${acks!.ids} pushes acknowledged in ${acks!.datagrams} ACKs (${idsPerAck} ids each)`);
  await load.close();
  await server.stop();
  const top = steps.filter((x) => x.offeredPerS === best).at(-1);
  const cpuAtTop = top && {
    serverUsPerMessage: usPerOp(top.serverCpuPct, top.deliveredPerS),
    generatorUsPerMessage: usPerOp(top.generatorCpuPct, top.deliveredPerS),
  };
  return { name, mode, bodyBytes, blobBytes, datagramBytes: load.datagramBytes, steps, maxMessagesPerS: best, maxDatagramsPerS: best * 4, latency, cpuAtTop, idsPerAck };
}

async function registrations(certs: Awaited<ReturnType<typeof loadCerts>>): Promise<{ first: RegistrationRun; again: RegistrationRun; serverCpuPct: { first: number; again: number } }> {
  const server = await spawnServer('peer');
  const keys = registrationKeys(certs, 100, P.regCount);
  const timed = async (): Promise<{ run: RegistrationRun; serverCpuPct: number }> => {
    const s0 = await server.stats();
    const t0 = performance.now();
    const run = await registrationRun(server.address, certs, 100, keys, REGISTER_CONCURRENCY);
    const s1 = await server.stats();
    return { run, serverCpuPct: Math.round(((cpuMs(s1) - cpuMs(s0)) / (performance.now() - t0)) * 100) };
  };
  const first = await timed();
  log(`  first registrations: ${first.run.perS}/s (${first.run.registrations} ok, ${first.run.refused} refused) p50 ${first.run.p50Us} us p99 ${first.run.p99Us} us cpu server ${first.serverCpuPct}% generator ${first.run.generatorCpuPct}%`);
  const again = await timed();
  log(`  repeat registrations: ${again.run.perS}/s (${again.run.registrations} ok, ${again.run.refused} refused) p50 ${again.run.p50Us} us p99 ${again.run.p99Us} us cpu server ${again.serverCpuPct}% generator ${again.run.generatorCpuPct}%`);
  await server.stop();
  return { first: first.run, again: again.run, serverCpuPct: { first: first.serverCpuPct, again: again.serverCpuPct } };
}

function memory(): Promise<MemoryResult> {
  return new Promise((resolve, reject) => {
    const proc = fork(join(here, 'bench', 'memory-child.ts'), [P.memCounts.join(','), String(P.keepalives), String(P.memSet)], {
      execArgv: ['--import', 'tsx', '--expose-gc', '--max-old-space-size=4096'],
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    proc.on('error', reject);
    proc.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as MemoryResult) : reject(new Error(`memory benchmark exited with ${code}`))));
  });
}

/** The client's store: persistence cost by size, JSON against SQLite, and the end-to-end burst. */
async function store(): Promise<StoreResults> {
  log('client persistence per message (JSON file rewritten whole vs SQLite)');
  const persistence = persistenceCost(quick ? [100, 10_000] : [100, 10_000, 100_000], quick ? 50 : 200, log);
  log('end-to-end burst between two nodes on loopback');
  const stored = quick ? 10_000 : 100_000;
  const burstEmpty = await burst(0, 1000, log);
  const burstStored = await burst(stored, 1000, log);
  return { persistence, burstEmpty, burstStored };
}

type StoreResults = { persistence: PersistencePoint[]; burstEmpty: BurstResult; burstStored: BurstResult };

function storeRows(r: StoreResults): Array<[string, string, string]> {
  const rows: Array<[string, string, string]> = [];
  for (const p of r.persistence) {
    rows.push([`client persistence per message, ${p.stored.toLocaleString('en')} stored`, `JSON ${p.jsonUsPerMessage} us, SQLite ${p.sqliteUsPerMessage} us`, 'flat in size']);
  }
  for (const b of [r.burstEmpty, r.burstStored]) {
    rows.push([`burst of ${b.messages} node to node, ${b.stored.toLocaleString('en')} stored`, `${b.shownPerS} msg/s shown, ${b.deliveredPerS} msg/s delivered`, b.stored ? '>= 500 msg/s' : '']);
    rows.push([`  sender CPU per message (peer + client, one process)`, `${b.senderCpuUsPerMessage} us; ${b.senderCommits} commits for ${b.messages} messages`, '']);
  }
  return rows;
}

/** End-to-end encryption per message, sealed against ratcheted. */
function ratchet(): RatchetCost {
  log('end-to-end encryption per message: sealed to the certificate, then a ratcheted session');
  return ratchetCost(quick ? 300 : 2000);
}

function ratchetRows(r: RatchetCost): Array<[string, string, string]> {
  return r.rows.map((x) => [
    `${x.case}, body ${x.bodyBytes} B`,
    `${x.wireBytes} B on the wire; send ${x.sendUsPerMessage} us, open ${x.openUsPerMessage} us CPU`,
    '',
  ] as [string, string, string]).concat([
    ['  a message tried against a session it is not for', `${r.foreignTrialUs} us`, ''],
    ['  a stored session', `${r.storedSessionBytes} B, at most ${r.storedSessionMaxBytes} B with every skipped key`, ''],
  ]);
}

/** Keepalives over UDP at P.udpKeepaliveClients registered clients; throws if the peer refused any. */
async function keepalives(): Promise<KeepaliveResult> {
  log(`keepalives over UDP: ${P.udpKeepaliveClients.toLocaleString('en')} clients, ${UDP_KEEPALIVE_PER_S.toLocaleString('en')}/s for ${P.udpKeepaliveMs / 1000} s`);
  const keepalive = await keepaliveOverUdp(join(here, 'bench'), P.udpKeepaliveClients, UDP_KEEPALIVE_PER_S, P.udpKeepaliveMs, log);
  log(`  ${JSON.stringify(keepalive)}`);
  const kd = keepalive.drops;
  if (kd.bad_session_tag || kd.session_replay || kd.path_probe || kd.not_in_session) throw new Error(`the peer refused keepalives: ${JSON.stringify(kd)}`);
  return keepalive;
}

/** The relay of the current code and of the code before protocol 2, in turn, 200 B and 1,000 B bodies. */
async function relayComparison(certs: Awaited<ReturnType<typeof loadCerts>>): Promise<{
  peer200: RelayResult; peer1000: RelayResult; base200?: RelayResult; base1000?: RelayResult;
  /** Sessions with one ACK per PUSH, 200 B bodies (like for like with the baseline's clients). */
  each200?: RelayResult;
  baselineSkipped?: string; baseInProcess?: { blob512: { perS: number; usPerMessage: number } };
}> {
  const sessions: RelayTarget = { name: 'sessions', Load: RelayLoad };
  let peer200: RelayResult | undefined, peer1000: RelayResult | undefined, each200: RelayResult | undefined;
  let base200: RelayResult | undefined, base1000: RelayResult | undefined;
  let baseTarget: RelayTarget | undefined;
  let baselineSkipped: string | undefined;
  let baseInProcess: { blob512: { perS: number; usPerMessage: number } } | undefined;
  const base = prepareBaseline(dirname(here));
  try {
    if (typeof base === 'string') {
      baselineSkipped = base;
      log(`  comparison with the code before protocol 2 skipped: ${base}`);
    } else {
      log(`  baseline: commit ${base.commit} in ${base.dir}`);
      const mod = (await import(pathToFileURL(base.relayModule).href)) as { RelayLoad: RelayTarget['Load'] };
      baseTarget = { name: 'baseline', serverScript: base.serverChild, Load: mod.RelayLoad };
      // Its own in-process relay (it times with the wall clock: comparable when the machine is quiet).
      const inproc = (await import(pathToFileURL(base.relayInProcessModule).href)) as { relayInProcess: typeof relayInProcess };
      baseInProcess = { blob512: await inproc.relayInProcess(certs, 12_200, 512, P.relayInProcess) };
      log(`  baseline relay through Peer.handle() in process: ${baseInProcess.blob512.usPerMessage} us per message (512 B blobs)`);
    }
    log('relay: the current code (sessions) and the code before protocol 2 (baseline), in turn');
    if (baseTarget) base200 = await relay(baseTarget, 200, certs, 0);
    peer200 = await relay(sessions, 200, certs, 0);
    log('relay, 200 B: the current code with one ACK per PUSH, as clients acknowledged before protocol 2');
    each200 = await relay({ ...sessions, ackEach: true }, 200, certs, 0);
    if (baseTarget) base1000 = await relay(baseTarget, 1000, certs, 40);
    peer1000 = await relay(sessions, 1000, certs, 40);
  } finally {
    if (typeof base !== 'string') base.remove();
  }
  return { peer200: peer200!, peer1000: peer1000!, base200, base1000, each200, baselineSkipped, baseInProcess };
}

async function main(): Promise<void> {
  const started = performance.now();
  if (ratchetOnly) {
    const r = ratchet();
    writeFileSync(outFile!, JSON.stringify({ quick, ratchet: r }, null, 2));
    printRows(ratchetRows(r));
    log(`results written to ${outFile}`);
    return;
  }
  if (dhtOnly) {
    log('home records on a HyperDHT testnet');
    const h = await homeDhtBench(quick ? 20 : 100, quick ? 20 : 100, log);
    writeFileSync(outFile!, JSON.stringify({ quick, homeDht: h }, null, 2));
    printRows(homeDhtRows(h));
    log(`results written to ${outFile}`);
    return;
  }
  if (storeOnly) {
    const r = await store();
    writeFileSync(outFile!, JSON.stringify({ quick, store: r }, null, 2));
    printRows(storeRows(r));
    log(`results written to ${outFile}`);
    return;
  }
  if (keepaliveOnly) {
    log(`peerpost bench --keepalive-only: load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    const k = await keepalives();
    writeFileSync(outFile!, JSON.stringify({ quick, keepalive: k, loadavgAtEnd: loadavg() }, null, 2));
    log(`keepalives over UDP, ${k.clients.toLocaleString('en')} clients: peer ${k.peerUsPerKeepalive} us each, ${k.peerCpuPct}% of a core at ${k.offeredPerS.toLocaleString('en')}/s; ${k.received.toLocaleString('en')} of ${k.sent.toLocaleString('en')} read, ${k.answers.toLocaleString('en')} of ${k.askedForAnswer.toLocaleString('en')} answers back`);
    log(`results written to ${outFile}`);
    return;
  }
  if (relayOnly) {
    log(`peerpost bench --relay-only: load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    const certs = await loadCerts(P.regCerts, 2, log);
    const r = await relayComparison(certs);
    const line = (x: RelayResult | undefined): string => (x ? `${x.maxMessagesPerS} msg/s, peer ${x.cpuAtTop?.serverUsPerMessage} us and generator ${x.cpuAtTop?.generatorUsPerMessage} us of CPU per message at that rate` : 'skipped');
    for (const [body, a, b] of [[200, r.peer200, r.base200], [1000, r.peer1000, r.base1000]] as const) {
      log(`relay, ${body} B body: sessions ${line(a)} (${a.idsPerAck} ids per ACK); before protocol 2 ${line(b)}; ratio ${b ? Math.round((100 * a.maxMessagesPerS) / b.maxMessagesPerS) : 'n/a'}%`);
    }
    if (r.each200) {
      const c = r.base200 && cpuAtCommonRate(r.each200, r.base200);
      log(`relay, 200 B body, one ACK per PUSH: sessions ${line(r.each200)}; ratio ${r.base200 ? Math.round((100 * r.each200.maxMessagesPerS) / r.base200.maxMessagesPerS) : 'n/a'}%${c ? `; peer CPU per message at ${c.rate} msg/s: sessions ${c.a} us, before ${c.b} us` : ''}`);
    }
    writeFileSync(outFile!, JSON.stringify({ quick, relay: r, loadavgAtEnd: loadavg() }, null, 2));
    log(`results written to ${outFile}`);
    return;
  }
  const machine = { cpus: cpus().length, model: cpus()[0]?.model, node: process.version, loadavgAtStart: loadavg().map((x) => Math.round(x * 100) / 100) };
  log(`peerpost bench${quick ? ' (quick)' : ''}: ${machine.cpus} cores, node ${machine.node}, load average ${machine.loadavgAtStart.join(' ')}`);
  const certs = await loadCerts(P.regCerts, 2, log);
  log('registration cost breakdown (one core, this process)');
  const breakdown = registrationBreakdown(certs, 10_000, P.breakdownN);
  log(`  ${JSON.stringify(breakdown)}`);
  const inProcess = await registerInProcess(certs, 12_000, P.regCount);
  log(`  through Peer.handle() in process: ${inProcess.firstPerS}/s first time, ${inProcess.againPerS}/s again`);
  const relayCpu = { blob512: await relayInProcess(certs, 12_000, 512, P.relayInProcess), blob1100: await relayInProcess(certs, 12_100, 1100, P.relayInProcess) };
  log(`  relay through Peer.handle() in process: ${relayCpu.blob512.usPerMessage} us per message (512 B blobs), ${relayCpu.blob1100.usPerMessage} us (1,100 B)`);
  const { peer200, peer1000, base200, base1000, each200, baselineSkipped, baseInProcess } = await relayComparison(certs);
  log('forwarder');
  const forwarder: RelayTarget = { name: 'forwarder', Load: RelayLoad };
  const fwd200 = await relay(forwarder, 200, certs, 0);
  const fwd1000 = await relay(forwarder, 1000, certs, 0);
  log('registrations');
  const reg = await registrations(certs);
  log('memory and keepalives');
  const mem = await memory();
  const keepalive = await keepalives();
  const storeResults = await store();
  const ratchetResults = ratchet();
  log('home records on a HyperDHT testnet');
  const homeDht = await homeDhtBench(quick ? 20 : 100, quick ? 20 : 100, log);
  const results = {
    quick,
    machine: { ...machine, loadavgAtEnd: loadavg().map((x) => Math.round(x * 100) / 100) },
    relay: { peer200, peer1000, fwd200, fwd1000, inProcess: relayCpu, baseline: { commit: BASELINE_COMMIT, skipped: baselineSkipped, base200, base1000, each200, inProcess: baseInProcess } },
    registration: { breakdownUs: breakdown, inProcess, ...reg },
    memory: mem,
    keepalive,
    store: storeResults,
    ratchet: ratchetResults,
    homeDht,
    runtimeS: Math.round((performance.now() - started) / 1000),
  };
  writeFileSync(outFile!, JSON.stringify(results, null, 2));
  printTable(results);
  log(`results written to ${outFile}`);
}

type Results = {
  relay: Record<'peer200' | 'peer1000' | 'fwd200' | 'fwd1000', RelayResult> & {
    inProcess: Record<'blob512' | 'blob1100', { perS: number; usPerMessage: number }>;
    baseline: { commit: string; skipped: string | undefined; base200: RelayResult | undefined; base1000: RelayResult | undefined; each200?: RelayResult; inProcess: { blob512: { usPerMessage: number } } | undefined };
  };
  keepalive: KeepaliveResult;
  registration: { first: RegistrationRun; again: RegistrationRun; inProcess: { firstPerS: number; againPerS: number }; serverCpuPct: { first: number; again: number } };
  memory: MemoryResult;
  store: StoreResults;
  ratchet: RatchetCost;
  homeDht: HomeDhtResult;
  machine: { cpus: number; loadavgAtStart: number[]; loadavgAtEnd: number[] };
  runtimeS: number;
};

/** Server CPU per message at the highest offered rate that both runs passed (their steps share rates), or undefined. */
function cpuAtCommonRate(a: RelayResult, b: RelayResult): { rate: number; a: number; b: number } | undefined {
  const passed = (r: RelayResult): Map<number, RelayStep & { serverCpuPct: number }> => new Map(r.steps.filter((x) => x.offeredPerS <= r.maxMessagesPerS).map((x) => [x.offeredPerS, x]));
  const pa = passed(a);
  const pb = passed(b);
  const rate = Math.max(0, ...[...pa.keys()].filter((k) => pb.has(k)));
  if (!rate) return undefined;
  const x = pa.get(rate)!;
  const y = pb.get(rate)!;
  return { rate, a: usPerOp(x.serverCpuPct, x.deliveredPerS), b: usPerOp(y.serverCpuPct, y.deliveredPerS) };
}

function printTable(r: Results): void {
  const rows: Array<[string, string, string]> = [];
  const pct = (a: number, b: number): string => (b ? `${Math.round((100 * a) / b)}%` : 'n/a');
  const ratio = (p: RelayResult, f: RelayResult): string => pct(p.maxDatagramsPerS, f.maxDatagramsPerS);
  const bl = r.relay.baseline;
  if (bl.skipped) rows.push([`relay against ${bl.commit} (before protocol 2)`, `skipped: ${bl.skipped}`, '']);
  for (const [p, b] of [[r.relay.peer200, bl.base200], [r.relay.peer1000, bl.base1000]] as const) {
    if (!b) continue;
    const tag = `body ${p.bodyBytes} B`;
    rows.push([`relay, ${tag}, before protocol 2 (${bl.commit})`, `${b.maxMessagesPerS} msg/s, peer ${b.cpuAtTop?.serverUsPerMessage ?? 'n/a'} us CPU/msg at the top rate`, '']);
    rows.push([`relay, ${tag}, authenticated sessions`, `${p.maxMessagesPerS} msg/s, peer ${p.cpuAtTop?.serverUsPerMessage ?? 'n/a'} us CPU/msg at the top rate, ${p.idsPerAck ?? 'n/a'} ids per ACK`, '']);
    rows.push([`  sessions / before, messages per second`, pct(p.maxMessagesPerS, b.maxMessagesPerS), '>= 90%']);
    const c = cpuAtCommonRate(p, b);
    if (c) rows.push([`  peer CPU per message at ${c.rate} msg/s (both passed)`, `before ${c.b} us, sessions ${c.a} us: sessions cost ${pct(c.a, c.b)}`, '<= 111%']);
    const e = p.bodyBytes === 200 ? bl.each200 : undefined;
    if (e) {
      rows.push([`relay, ${tag}, authenticated sessions, one ACK per PUSH`, `${e.maxMessagesPerS} msg/s, peer ${e.cpuAtTop?.serverUsPerMessage ?? 'n/a'} us CPU/msg at the top rate`, '']);
      rows.push([`  one ACK per PUSH / before, messages per second`, pct(e.maxMessagesPerS, b.maxMessagesPerS), '']);
      const ce = cpuAtCommonRate(e, b);
      if (ce) rows.push([`  peer CPU per message at ${ce.rate} msg/s (both passed)`, `before ${ce.b} us, sessions ${ce.a} us: ${pct(ce.a, ce.b)}`, '']);
    }
  }
  for (const [p, f] of [[r.relay.peer200, r.relay.fwd200], [r.relay.peer1000, r.relay.fwd1000]] as const) {
    const tag = `body ${p.bodyBytes} B (blob ${p.blobBytes} B)`;
    rows.push([`relay, ${tag}`, `${p.maxMessagesPerS} msg/s = ${p.maxDatagramsPerS} dgram/s`, '']);
    rows.push([`  latency at ${p.latency.offeredPerS} msg/s`, `p50 ${p.latency.p50Us} us, p99 ${p.latency.p99Us} us`, '']);
    rows.push([`forwarder, same datagrams`, `${f.maxDatagramsPerS} dgram/s`, '']);
    rows.push([`  peer / forwarder`, ratio(p, f), '>= 70%']);
  }
  rows.push(['  peer CPU per relayed message (handle() in process)', `${r.relay.inProcess.blob512.usPerMessage} us (512 B blob), ${r.relay.inProcess.blob1100.usPerMessage} us (1,100 B)`, '']);
  if (bl.inProcess) rows.push([`  the same before protocol 2 (its own, wall-clock timed)`, `${bl.inProcess.blob512.usPerMessage} us (512 B blob): sessions cost ${pct(r.relay.inProcess.blob512.usPerMessage, bl.inProcess.blob512.usPerMessage)}`, '']);
  for (const [p, f] of [[r.relay.peer200, r.relay.fwd200], [r.relay.peer1000, r.relay.fwd1000]] as const) {
    if (!p.cpuAtTop || !f.cpuAtTop) continue;
    rows.push([`  CPU per message at the top rate, body ${p.bodyBytes} B`, `peer ${p.cpuAtTop.serverUsPerMessage} us, forwarder ${f.cpuAtTop.serverUsPerMessage} us (generator ${p.cpuAtTop.generatorUsPerMessage} / ${f.cpuAtTop.generatorUsPerMessage} us)`, '']);
  }
  const cores = r.machine.cpus;
  for (const [name, run, pct] of [['first time', r.registration.first, r.registration.serverCpuPct.first], ['again (same certs)', r.registration.again, r.registration.serverCpuPct.again]] as const) {
    rows.push([`registrations, ${name}`, `${run.perS}/s`, '>= 5,000/s']);
    const server = usPerOp(pct, run.perS);
    const generator = usPerOp(run.generatorCpuPct, run.perS);
    rows.push([`  CPU per registration`, `peer ${server} us + generator ${generator} us: ${cores} cores allow at most ${Math.round((cores * 1e6) / (server + generator))}/s`, '']);
  }
  rows.push(['  peer CPU only (handle() in process)', `${r.registration.inProcess.firstPerS}/s first, ${r.registration.inProcess.againPerS}/s again`, '']);
  for (const m of r.memory.points) rows.push([`RSS per client at ${m.clients.toLocaleString('en')}`, `${m.rssPerClientBeyondDerBytes} B beyond ${r.memory.derBytes} B DER`, '<= 300 B']);
  rows.push([`keepalives, ${r.memory.keepalive.clients.toLocaleString('en')} clients, handle()`, `${r.memory.keepalive.perS}/s of peer CPU (a quarter answered)`, '']);
  const k = r.keepalive;
  const share = Math.round((k.peerUsPerKeepalive * k.offeredPerS) / 1e4);
  rows.push([`keepalives over UDP, ${k.clients.toLocaleString('en')} clients`, `peer ${k.peerUsPerKeepalive} us each: ${share}% of a core at ${k.offeredPerS.toLocaleString('en')}/s`, '<= 50%']);
  rows.push([`  over the window`, `peer CPU ${k.peerCpuPct}%, ${k.received} of ${k.sent} received, ${k.answers} of ${k.askedForAnswer} asked answered`, '']);
  rows.push(...storeRows(r.store));
  rows.push(...ratchetRows(r.ratchet));
  rows.push(...homeDhtRows(r.homeDht));
  printRows(rows);
  console.log(`\nload average ${r.machine.loadavgAtStart.join(' ')} at start, ${r.machine.loadavgAtEnd.join(' ')} at end; ${r.runtimeS} s`);
}

function printRows(rows: Array<[string, string, string]>): void {
  const w0 = Math.max(...rows.map((x) => x[0].length));
  const w1 = Math.max(...rows.map((x) => x[1].length));
  console.log(`\n${'measure'.padEnd(w0)} | ${'result'.padEnd(w1)} | target`);
  console.log(`${'-'.repeat(w0)}-|-${'-'.repeat(w1)}-|-------`);
  for (const [a, b, c] of rows) console.log(`${a.padEnd(w0)} | ${b.padEnd(w1)} | ${c}`);
}

await main();
