/**
 * The process under load for the relay and registration benchmarks, run as a child of bench.ts so
 * that it has a core of its own: either a real peer (startPeer, rateLimit off because every
 * loopback source shares one IP, the registration proof bucket and the new-identity rate per
 * source range off because the registration benchmark measures what the cores allow, not the
 * default admission rates (every certificate comes from 127.0.0.1), the per-source-range
 * storage shares as large as the storage for the same reason) or a plain dgram forwarder with no protocol, given the same socket
 * settings as UdpDriver (4 MiB buffers, synchronous literal-IP lookup, sends batched in one
 * setImmediate). It reports its address over IPC and answers 'stats' / 'exit' messages.
 */
import dgram from 'node:dgram';
import { isIP } from 'node:net';
import { generateIdentity } from '../../src/identity/certificate.js';
import { startPeer } from '../../src/net/start-peer.js';
import { QUOTA_DEFAULTS } from '../../src/peer/quota.js';
import { FORWARD_HELLO } from './endpoint.js';

const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;

type Reply = { address: { host: string; port: number } } | { stats: unknown };

function reply(m: Reply): void {
  process.send?.(m);
}

async function runPeer(): Promise<void> {
  const identity = await generateIdentity({ commonName: 'bench-peer' });
  // Every sender and recipient of the load comes from 127.0.0.1: one source range, which the
  // per-range storage shares would cap at a fraction of the storage meant for many ranges. They are
  // given the whole storage (still bounded by storageBytesMax), as the rate limit is turned off.
  const whole = QUOTA_DEFAULTS.storageBytesMax;
  const running = await startPeer({
    host: '127.0.0.1', port: 0, identity, rateLimit: null, proofRate: null, newIdentityRate: null, senderPrefixBytesMax: whole, registeredPrefixBytesMax: whole,
  });
  process.on('message', (m: string) => {
    if (m === 'stats') reply({ stats: { ...running.peer.stats(), driver: running.driver.stats, rss: process.memoryUsage().rss, cpu: process.cpuUsage() } });
    if (m === 'exit') void running.close().then(() => process.exit(0));
  });
  reply({ address: running.address });
}

function literalLookup(address: string, _f: unknown, cb: (err: Error | null, address: string, family: number) => void): void {
  cb(null, address, isIP(address) || 4);
}

async function runForwarder(): Promise<void> {
  const socket = dgram.createSocket({ type: 'udp4', lookup: literalLookup as never });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  socket.setRecvBufferSize(SOCKET_BUFFER_BYTES);
  socket.setSendBufferSize(SOCKET_BUFFER_BYTES);
  const routes = new Map<number, { host: string; port: number }>();
  let batch: Array<{ data: Buffer; to: { host: string; port: number } }> = [];
  let scheduled = false;
  let forwarded = 0;
  let unknown = 0;
  const flush = (): void => {
    scheduled = false;
    const b = batch;
    batch = [];
    for (const t of b) socket.send(t.data, t.to.port, t.to.host);
  };
  socket.on('message', (msg, rinfo) => {
    if (msg.length < 2) return;
    const dest = msg.readUInt16BE(0);
    if (dest === FORWARD_HELLO) {
      routes.set(msg.readUInt16BE(2), { host: rinfo.address, port: rinfo.port });
      batch.push({ data: msg, to: { host: rinfo.address, port: rinfo.port } });
    } else {
      const to = routes.get(dest);
      if (!to) {
        unknown++;
        return;
      }
      forwarded++;
      batch.push({ data: msg, to });
    }
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  });
  process.on('message', (m: string) => {
    if (m === 'stats') reply({ stats: { forwarded, unknown, rss: process.memoryUsage().rss, cpu: process.cpuUsage() } });
    if (m === 'exit') socket.close(() => process.exit(0));
  });
  const a = socket.address();
  reply({ address: { host: a.address, port: a.port } });
}

if (process.argv[2] === 'peer') await runPeer();
else if (process.argv[2] === 'forwarder') await runForwarder();
else throw new Error('usage: server-child.ts peer|forwarder');
