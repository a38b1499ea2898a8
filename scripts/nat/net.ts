/**
 * The namespaces of the real-NAT tests (built by netns.sh) and the faults applied to them:
 * random loss in a NAT router, a changed NAT mapping, a flushed conntrack table.
 */
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const NETNS_SH = join(dirname(fileURLToPath(import.meta.url)), 'netns.sh');
/** Bound for one ip/iptables/conntrack command. */
const COMMAND_TIMEOUT_MS = 20_000;

export const PREFIX = process.env.PP_NS_PREFIX ?? 'pp';
export const PUB_NS = `${PREFIX}-pub`;
export const natNs = (i: number): string => `${PREFIX}-nat${i}`;
export const cliNs = (i: number): string => `${PREFIX}-cli${i}`;
/** Peers listen here, in the public namespace. */
export const PEER_HOSTS = ['198.18.100.1', '198.18.100.2'] as const;
export const PEER_PORT = 7000;

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', timeout: COMMAND_TIMEOUT_MS, stdio: ['ignore', 'pipe', 'pipe'] });
}

function inNs(ns: string, cmd: string, args: string[]): string {
  return run('ip', ['netns', 'exec', ns, cmd, ...args]);
}

/** Build the public namespace and `clients` NAT router + client host pairs. */
export function netnsUp(clients: number, conntrackUdpTimeoutS: number): void {
  run('bash', [NETNS_SH, 'up', String(clients), String(conntrackUdpTimeoutS)]);
}

export function netnsDown(): void {
  try {
    run('bash', [NETNS_SH, 'down']);
  } catch {
    // best effort: the namespaces may already be gone
  }
}

/** The conntrack UDP timeouts really in force in NAT router `i` (seconds). */
export function conntrackTimeouts(i: number): { udp: number; stream: number } {
  const get = (k: string): number => Number(inNs(natNs(i), 'sysctl', ['-n', `net.netfilter.${k}`]).trim());
  return { udp: get('nf_conntrack_udp_timeout'), stream: get('nf_conntrack_udp_timeout_stream') };
}

/** Drop a random `probability` of the datagrams forwarded by NAT router `i`, each way. */
export function addLoss(i: number, probability: number): void {
  for (const dir of ['in', 'out']) {
    inNs(natNs(i), 'iptables', ['-A', 'FORWARD', '-i', dir, '-m', 'statistic', '--mode', 'random',
      '--probability', String(probability), '-j', 'DROP']);
  }
}

export function clearLoss(i: number): void {
  inNs(natNs(i), 'iptables', ['-F', 'FORWARD']);
}

/** Datagrams dropped by the loss rules of NAT router `i` (both ways). */
export function lossDrops(i: number): number {
  const out = inNs(natNs(i), 'iptables', ['-L', 'FORWARD', '-v', '-n', '-x']);
  let n = 0;
  for (const line of out.split('\n')) {
    if (!line.includes('statistic')) continue;
    n += Number(line.trim().split(/\s+/)[0] ?? 0);
  }
  return n;
}

/** Ports of the second kind of mapping change: same outside address, other ports. */
export const REMAP_PORTS = '40000-40999';

/**
 * Change the mapping of NAT router `i` and forget every mapping, so the client's next datagram
 * leaves from a new public IP:PORT: 'address' SNATs to the router's second outside address
 * 198.18.<i>.3; 'ports' MASQUERADEs to the ports REMAP_PORTS on the first one. Returns the new
 * outside address.
 */
export function changeMapping(i: number, how: 'address' | 'ports'): string {
  const rule = how === 'address'
    ? ['-j', 'SNAT', '--to-source', `198.18.${i}.3`]
    : ['-p', 'udp', '-j', 'MASQUERADE', '--to-ports', REMAP_PORTS];
  inNs(natNs(i), 'iptables', ['-t', 'nat', '-R', 'POSTROUTING', '1', '-o', 'out', ...rule]);
  flushConntrack(i);
  return how === 'address' ? `198.18.${i}.3` : `198.18.${i}.2`;
}

export function flushConntrack(i: number): void {
  try {
    inNs(natNs(i), 'conntrack', ['-F']);
  } catch {
    // conntrack -F exits non-zero on an empty table with some versions
  }
}

/** The conntrack UDP entries of NAT router `i` (one line each). */
export function conntrackList(i: number): string[] {
  try {
    return inNs(natNs(i), 'conntrack', ['-L', '-p', 'udp']).split('\n').filter((l) => l.includes('udp'));
  } catch {
    return [];
  }
}
