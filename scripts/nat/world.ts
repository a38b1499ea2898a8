/**
 * One scenario's world: the namespaces, two peers in the public namespace, clients behind their
 * own NAT routers, each a real CLI process with its own home folder; and a clean end (processes
 * stopped by pid, namespaces and folders removed) on success and on failure alike.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NsProcess, type Event } from './ns-process.js';
import { PEER_HOSTS, PEER_PORT, PUB_NS, cliNs, netnsDown, netnsUp } from './net.js';

/** PP_NAT_LOG_LEVEL=debug passes --log-level to every process (their logs go to stderr, kept per process). */
const LOG_ARGS = process.env.PP_NAT_LOG_LEVEL ? ['--log-level', process.env.PP_NAT_LOG_LEVEL] : [];

/** Bound for a process to start and print its first event. */
export const START_WAIT_MS = 20_000;

export interface ClientHandle {
  name: string;
  /** Index of its NAT router and client host (1-based). */
  host: number;
  home: string;
  peer: string;
  keepaliveS: number;
  proc: NsProcess;
  address: string;
  fingerprint: string;
}

export class World {
  readonly dir = mkdtempSync(join(tmpdir(), 'peerpost-nat-'));
  readonly peers: NsProcess[] = [];
  readonly clients = new Map<string, ClientHandle>();
  private readonly procs: NsProcess[] = [];

  constructor(readonly hosts: number, readonly conntrackUdpTimeoutS: number) {
    netnsUp(hosts, conntrackUdpTimeoutS);
  }

  peerAddr(k: number): string {
    return `${PEER_HOSTS[k] ?? PEER_HOSTS[0]}:${PEER_PORT}`;
  }

  /** Start (or restart, with the same home and so the same identity) peer `k` (0 or 1). */
  async startPeer(k: number): Promise<NsProcess> {
    const host = PEER_HOSTS[k] ?? PEER_HOSTS[0];
    const p = NsProcess.start(`peer${k + 1}`, PUB_NS, ['peer', '--host', host, '--port', String(PEER_PORT),
      '--json', '--summary-interval', '0', '--home', join(this.dir, `peer${k + 1}`), ...LOG_ARGS]);
    this.procs.push(p);
    this.peers[k] = p;
    await p.waitFor((e) => e.event === 'listening', `peer${k + 1} listening`, START_WAIT_MS);
    return p;
  }

  /** Start (or restart) client `name` on host `host`, registered with peer `peerIndex`. */
  async startClient(name: string, host: number, peerIndex: number, keepaliveS: number): Promise<ClientHandle> {
    const home = join(this.dir, name);
    const peer = this.peerAddr(peerIndex);
    const proc = NsProcess.start(name, cliNs(host), ['client', '--peer', peer, '--home', home, '--json',
      '--keepalive', String(keepaliveS), ...LOG_ARGS]);
    this.procs.push(proc);
    const ready = await proc.waitFor((e) => e.event === 'ready', `${name} ready`, START_WAIT_MS);
    await proc.waitFor((e) => e.event === 'registered', `${name} registered`, START_WAIT_MS);
    const c: ClientHandle = {
      name, host, home, peer, keepaliveS, proc, address: String(ready.address), fingerprint: String(ready.fingerprint),
    };
    this.clients.set(name, c);
    return c;
  }

  /** `a` adds `b` as a contact named b.name and waits until b's certificate is fetched. */
  async addContact(a: ClientHandle, b: ClientHandle): Promise<void> {
    a.proc.line(`/add ${b.address} ${b.name}`);
    await a.proc.waitFor((e: Event) => e.event === 'contact-cert' && e.fingerprint === b.fingerprint && e.ok === true,
      `${a.name}: certificate of ${b.name}`);
  }

  /** Every process's events and log tail (PP_NAT_DUMP=FILE writes FILE.<scenario>). */
  dump(file: string): void {
    const text = this.procs.map((p) => `### ${p.name} pid ${p.pid ?? '?'}\n${p.events.map((e) => JSON.stringify(e)).join('\n')}\n--- stderr\n${p.stderr}\n`);
    writeFileSync(file, text.join('\n'));
  }

  /** Stop every process this world started (by pid), remove the namespaces and the folders. */
  async close(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.stop('SIGTERM', 3000).catch(() => null)));
    netnsDown();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
