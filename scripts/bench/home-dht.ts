/**
 * Home records on a private HyperDHT of 10 nodes on 127.0.0.1: the time to publish a record
 * (mutable put and announce) and to resolve a fingerprint (lookup, fetch, verify), p50 and p99,
 * and the size of a record's DHT value with one IPv4 peer and with HOME_PEERS_MAX IPv6 peers.
 */
import createTestnet from 'hyperdht/testnet.js';
import { generateIdentity } from '../../src/identity/certificate.js';
import { HomeDht } from '../../src/discovery/home-dht.js';
import { HOME_PEERS_MAX, signHomeRecord } from '../../src/discovery/home-record.js';

export interface HomeDhtResult {
  nodes: number;
  publishes: number;
  resolutions: number;
  publishMs: { p50: number; p99: number };
  resolveMs: { p50: number; p99: number };
  valueBytesOnePeer: number;
  valueBytesMaxPeers: number;
}

function quantile(sorted: number[], q: number): number {
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! * 10) / 10;
}

export async function homeDhtBench(publishes: number, resolutions: number, log: (s: string) => void): Promise<HomeDhtResult> {
  const nodes = 10;
  const tn = await createTestnet(nodes, { host: '127.0.0.1' });
  const a = new HomeDht({ bootstrap: tn.bootstrap });
  const b = new HomeDht({ bootstrap: tn.bootstrap });
  try {
    if ((await a.ready()) !== 'ready' || (await b.ready()) !== 'ready') throw new Error('testnet not reachable');
    const id = await generateIdentity({ commonName: 'bench' });
    const peerFp = new Uint8Array(32).fill(1);
    const one = { fingerprint: id.fingerprint, peers: [{ host: '198.51.100.7', port: 7777, fingerprint: peerFp }], seq: 1, timeMs: Date.now() };
    const max = { ...one, peers: Array.from({ length: HOME_PEERS_MAX }, (_, i) => ({ host: `2001:db8:ffff:ffff:ffff:ffff:ffff:${i}`, port: 65535, fingerprint: peerFp })) };
    const pub: number[] = [];
    for (let i = 0; i < publishes; i++) {
      const t0 = performance.now();
      const r = await a.publish(id, { ...one, seq: i + 1 });
      if (!r.ok) throw new Error(`publish failed: ${r.detail}`);
      pub.push(performance.now() - t0);
    }
    const res: number[] = [];
    for (let i = 0; i < resolutions; i++) {
      const t0 = performance.now();
      const r = await b.resolve(id.fingerprint);
      if (!r.ok || r.home.record.seq !== publishes) throw new Error(`resolve failed: ${r.ok ? `seq ${r.home.record.seq}` : r.detail}`);
      res.push(performance.now() - t0);
    }
    pub.sort((x, y) => x - y);
    res.sort((x, y) => x - y);
    const out: HomeDhtResult = {
      nodes, publishes, resolutions,
      publishMs: { p50: quantile(pub, 0.5), p99: quantile(pub, 0.99) },
      resolveMs: { p50: quantile(res, 0.5), p99: quantile(res, 0.99) },
      valueBytesOnePeer: signHomeRecord(id, one).length,
      valueBytesMaxPeers: signHomeRecord(id, max).length,
    };
    log(`  ${JSON.stringify(out)}`);
    return out;
  } finally {
    await a.close();
    await b.close();
    await tn.destroy();
  }
}
