/**
 * The peer of the keepalive benchmark, in a process of its own on a real UDP socket (startPeer,
 * as `peerpost peer` runs it). Asked to `fill`, it puts `count` clients into its registry with
 * distinct certificates from the benchmark cache and session secrets from the generator's seed
 * (SessionRecords: the state a verified REGISTER_PROOF leaves), client i at the generator's socket
 * i mod ports.length, then answers `filled`. Running 1,000,000 registrations over UDP first would
 * take longer than the measurement itself; every keepalive that follows still goes through the
 * socket, the session lookup, the replay window and the MAC check. Answers 'stats' and 'exit' like
 * server-child.ts.
 */
import { generateIdentity, fingerprintOf } from '../../src/identity/certificate.js';
import { startPeer } from '../../src/net/start-peer.js';
import { loadCerts, certAt } from './certs.js';
import { SessionRecords, putSession } from './sessions.js';

export interface FillRequest {
  fill: { seed: number[]; count: number; host: string; ports: number[] };
}

const identity = await generateIdentity({ commonName: 'bench-peer' });
const running = await startPeer({ host: '127.0.0.1', port: 0, identity, rateLimit: null, registryMax: 1_100_000 });

process.on('message', (m: string | FillRequest) => {
  if (m === 'stats') process.send?.({ stats: { ...running.peer.stats(), driver: running.driver.stats, rss: process.memoryUsage().rss, cpu: process.cpuUsage() } });
  else if (m === 'exit') void running.close().then(() => process.exit(0));
  else if (typeof m === 'object' && m.fill) void fill(m.fill);
});

async function fill(f: FillRequest['fill']): Promise<void> {
  const t0 = performance.now();
  const certs = await loadCerts(f.count, 2, (s) => process.stderr.write(`${s}\n`));
  const records = SessionRecords.make(Uint8Array.from(f.seed), f.count);
  const now = Date.now();
  for (let i = 0; i < f.count; i++) {
    const der = certAt(certs, i);
    putSession(running.peer, now, records, i, fingerprintOf(der), der, `${f.host}:${f.ports[i % f.ports.length]}`);
  }
  process.send?.({ filled: { registered: running.peer.stats().registered, ms: Math.round(performance.now() - t0) } });
}

process.send?.({ address: running.address });
