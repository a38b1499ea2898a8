/**
 * Memory and keepalive benchmark, in a process of its own (run with --expose-gc): a real Peer,
 * filled with distinct certificates through its registry (the same put() a REGISTER_PROOF ends
 * in, with the key strings and the session's secrets made the same way), RSS measured after a full
 * GC at each count; then SESSION KEEPALIVEs (MAC and new counter each) from registered addresses
 * through peer.handle() in this process (no socket), a quarter asking for an OK, timed per batch.
 */
import { generateIdentity } from '../../src/identity/certificate.js';
import { fingerprintOf } from '../../src/identity/certificate.js';
import { Peer } from '../../src/peer/peer.js';
import { MsgType } from '../../src/protocol/constants.js';
import { sealSession } from '../../src/crypto/session.js';
import { CLIENT_DEFAULTS } from '../../src/client/types.js';
import { SessionRecords, putSession } from './sessions.js';
import { cpuMs } from './cpu-time.js';
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
  const records = SessionRecords.make(randomBytes(32), max);
  const base = settle();
  const points: MemoryPoint[] = [];
  let n = 0;
  for (const target of counts) {
    for (; n < target; n++) {
      const der = certAt(certs, n);
      putSession(peer, now, records, n, fingerprintOf(der), der, `${hostOf(n)}:40000`);
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
  // Keepalives in the clients' sessions (a new counter each, the client-to-peer MAC), from their
  // registered addresses, in a stride order so consecutive ones touch far apart entries. Each
  // client asks for an answer on every keepaliveAnswerEvery-th keepalive, starting at a phase of
  // its own (a steady state: a quarter ask). Datagrams are sealed outside the timed calls.
  const keepalives = Number(keepalivesArg);
  const every = CLIENT_DEFAULTS.keepaliveAnswerEvery;
  const stride = 7919;
  const sent = new Uint32Array(n);
  const batch = 4096;
  let answered = 0;
  let ms = 0;
  for (let done = 0; done < keepalives; done += batch) {
    const m = Math.min(batch, keepalives - done);
    const data: Uint8Array[] = [];
    const clients: number[] = [];
    for (let k = 0; k < m; k++) {
      const c = ((done + k) * stride) % n;
      const counter = ++sent[c]!;
      data.push(sealSession(records.c2p(c), records.sessionId(c), counter, { type: MsgType.KEEPALIVE, answer: (counter - 1 + c) % every === 0 }));
      clients.push(c);
    }
    const t0 = cpuMs();
    for (let k = 0; k < m; k++) {
      peer.handle(now + 1 + ((done + k) >> 10), { host: hostOf(clients[k]!), port: 40000 }, data[k]!);
      while (peer.pollTransmit()) answered++;
    }
    ms += cpuMs() - t0;
  }
  const drops = peer.stats().drops;
  for (const reason of ['bad_session_tag', 'session_replay', 'path_probe']) {
    if (drops[reason]) throw new Error(`the peer dropped ${drops[reason]} keepalives as ${reason}`);
  }
  const result: MemoryResult = {
    derBytes: certs.derBytes,
    points,
    keepalive: { clients: n, keepalives, perS: Math.round((keepalives * 1000) / ms), answered },
  };
  process.stdout.write(JSON.stringify(result));
}

await main();
