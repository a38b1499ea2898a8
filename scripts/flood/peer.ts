/**
 * Flood test, the relay: the public embedding Peer on 127.0.0.1 with a port picked by the kernel.
 * Reports its address when ready and its stats and CPU time when told to stop.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Peer } from '../../src/api/index.js';
import { arg, childInit, toParent } from './child.js';

const home = mkdtempSync(join(tmpdir(), 'pp-flood-peer-'));
const peer = await Peer.start({ host: '127.0.0.1', port: 0, home, summaryIntervalMs: 0, storageBytesMax: Number(arg('storage-bytes', '4194304')) });
const cpu0 = process.cpuUsage();
childInit(Number(arg('lifetime-ms', '120000')), async (m) => {
  if (m.type !== 'stop') return;
  const cpu = process.cpuUsage(cpu0);
  toParent({ type: 'stats', stats: peer.stats(), cpuMs: (cpu.user + cpu.system) / 1000 });
  await peer.close();
  rmSync(home, { recursive: true, force: true });
  process.exit(0);
});
toParent({ type: 'ready', address: peer.address });
