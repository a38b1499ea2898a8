/**
 * Memory and keepalive benchmark, in a process of its own (run with --expose-gc): a real Peer,
 * filled with distinct certificates through its registry (the same put() a REGISTER_PROOF ends
 * in, with the key strings made the same way), RSS measured after a full GC at each count; then
 * KEEPALIVE datagrams from registered addresses through peer.handle() in this process (no socket),
 * each answered with OK, timed per batch.
 */
import { generateIdentity } from '../../src/identity/certificate.js';
import { fingerprintOf } from '../../src/identity/certificate.js';
import { Peer } from '../../src/peer/peer.js';
import type { Registry } from '../../src/peer/registry.js';
import { bytesKey } from '../../src/peer/keys.js';
import { encode } from '../../src/protocol/codec.js';
import { MsgType } from '../../src/protocol/constants.js';
import { loadCerts, certAt } from './certs.js';
import { randomBytes } from 'node:crypto';

export interface MemoryPoint {
  clients: number;
  rssBytes: number;
  heapUsedBytes: number;
  /** (RSS growth) / clients - DER bytes. */
  rssPerClientBeyondDerBytes: number;
  heapPerClientBytes: number;
}

export interface MemoryResult {
  derBytes: number;
  points: MemoryPoint[];
  keepalive: { clients: number; keepalives: number; perS: number; answered: number };
}

const gc = (globalThis as { gc?: () => void }).gc;

function settle(): NodeJS.MemoryUsage {
  for (let i = 0; i < 3; i++) gc?.();
  return process.memoryUsage();
}

function hostOf(i: number): string {
  return `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`;
}

async function main(): Promise<void> {
  const [countsArg, keepalivesArg, setArg] = process.argv.slice(2) as [string, string, string];
  const counts = countsArg.split(',').map(Number);
  const max = Math.max(...counts);
  const certs = await loadCerts(Number(setArg), 2, (m) => process.stderr.write(`${m}\n`));
  const identity = await generateIdentity({ commonName: 'bench-peer' });
  const now = Date.now();
  const peer = new Peer({ identity, random: (n) => new Uint8Array(randomBytes(n)), rateLimit: null, registryMax: Math.max(max, 1) }, now);
  const registry = (peer as unknown as { registry: Registry }).registry;
  const base = settle();
  const points: MemoryPoint[] = [];
  let n = 0;
  for (const target of counts) {
    for (; n < target; n++) {
      const der = certAt(certs, n);
      registry.put(now, bytesKey(fingerprintOf(der)), bytesKey(new Uint8Array(der)), `${hostOf(n)}:40000`);
    }
    const m = settle();
    const rssPer = (m.rss - base.rss) / n;
    points.push({
      clients: n,
      rssBytes: m.rss,
      heapUsedBytes: m.heapUsed,
      rssPerClientBeyondDerBytes: Math.round(rssPer - certs.derBytes),
      heapPerClientBytes: Math.round((m.heapUsed - base.heapUsed) / n),
    });
    process.stderr.write(`${n} clients: ${Math.round(rssPer)} B RSS per client\n`);
  }
  // Keepalives from registered addresses, in a stride order so consecutive ones touch far apart entries.
  const keepalives = Number(keepalivesArg);
  const ka = encode({ type: MsgType.KEEPALIVE });
  const stride = 7919;
  let answered = 0;
  const t0 = performance.now();
  for (let i = 0; i < keepalives; i++) {
    const c = (i * stride) % n;
    peer.handle(now + 1 + (i >> 10), { host: hostOf(c), port: 40000 }, ka);
    while (peer.pollTransmit()) answered++;
  }
  const ms = performance.now() - t0;
  const result: MemoryResult = {
    derBytes: certs.derBytes,
    points,
    keepalive: { clients: n, keepalives, perS: Math.round((keepalives * 1000) / ms), answered },
  };
  process.stdout.write(JSON.stringify(result));
}

await main();
