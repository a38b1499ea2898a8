/**
 * Flood test, the HELLO flooder: HELLOs as a client sends them (the codec's padding, the smallest
 * the peer answers) at `--rate` per second, spread over `--sources` sockets bound to as many loopback addresses
 * 127.(10+i/256).(i%256).1, one per /24 (Linux answers to all of 127/8 on lo). Runs from 'start'
 * until 'stop' and reports what it sent and what came back.
 */
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { encode, MsgType } from '../../src/protocol/index.js';
import { parseAddr } from '../../src/core/types.js';
import { arg, childInit, toParent } from './child.js';

const peer = parseAddr(arg('peer', ''));
if (!peer) throw new Error('--peer HOST:PORT is required');
const rate = Number(arg('rate', '20000'));
const sourcesN = Number(arg('sources', '256'));
/** Send ticks per second; each sends what the rate owes since the start. */
const TICK_MS = 5;

const sockets: Socket[] = [];
let answers = 0;
let answerBytes = 0;
for (let i = 0; i < sourcesN; i++) {
  const s = createSocket('udp4');
  s.on('message', (d) => {
    answers++;
    answerBytes += d.length;
  });
  s.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, `127.${10 + (i >> 8)}.${i & 255}.1`, () => resolve());
  });
  sockets.push(s);
}
// A few different nonces; the peer keeps no state per HELLO, so reuse costs it nothing less.
const hellos = Array.from({ length: 64 }, () => encode({ type: MsgType.HELLO, nonce: new Uint8Array(randomBytes(16)) }));

let sent = 0;
let startedAt = 0;
let timer: NodeJS.Timeout | undefined;
function tick(): void {
  const owed = Math.floor(((performance.now() - startedAt) * rate) / 1000) - sent;
  // At most a second's worth per tick, so a stalled event loop catches up over a few ticks.
  for (let n = Math.min(owed, rate); n > 0; n--, sent++) {
    sockets[sent % sockets.length]!.send(hellos[sent % hellos.length]!, peer!.port, peer!.host);
  }
}

childInit(Number(arg('lifetime-ms', '120000')), (m) => {
  if (m.type === 'start') {
    startedAt = performance.now();
    timer = setInterval(tick, TICK_MS);
    return;
  }
  clearInterval(timer);
  const ms = performance.now() - startedAt;
  toParent({ type: 'stats', sent, ms, answers, answerBytes, sources: sockets.length, helloBytes: hellos[0]!.length });
  for (const s of sockets) s.close();
  process.exit(0);
});
toParent({ type: 'ready' });
