/**
 * A peerpost CLI process (`peer` or `client`, with --json) run inside a network namespace with
 * `ip netns exec`, driven through its standard input. Every JSON line it prints is kept as an event
 * stamped with the local monotonic time it was read (`at`, ms), so latencies can be measured from
 * the outside. `ip netns exec` replaces itself with node, so the child's pid is node's pid.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI_MAIN = join(ROOT, 'dist', 'cli', 'main.js');
/** Default bound for one wait on an event. */
export const EVENT_WAIT_DEFAULT_MS = 15_000;
/** Tail of each process's stderr kept (its log at --log-level debug). */
const STDERR_KEPT_CHARS = 400_000;

export type Event = Record<string, unknown> & { event?: string; at: number };

export const now = (): number => performance.now();

export class NsProcess {
  readonly events: Event[] = [];
  stderr = '';
  private waiters: Array<{ pred: (e: Event) => boolean; resolve: (e: Event) => void }> = [];
  private listeners: Array<(e: Event) => void> = [];
  private readonly exited: Promise<number | null>;

  private constructor(readonly name: string, readonly child: ChildProcessWithoutNullStreams) {
    let buf = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      buf += d;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (!line.trim()) continue;
        let e: Event;
        try {
          e = { ...(JSON.parse(line) as Record<string, unknown>), at: now() };
        } catch {
          e = { event: 'text', line, at: now() };
        }
        this.events.push(e);
        for (const l of this.listeners) l(e);
        this.waiters = this.waiters.filter((w) => (w.pred(e) ? (w.resolve(e), false) : true));
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      this.stderr = (this.stderr + d).slice(-STDERR_KEPT_CHARS);
    });
    child.stdin.on('error', () => {});
    this.exited = new Promise((res) => child.on('exit', (code) => res(code)));
  }

  /** `ip netns exec <ns> node dist/cli/main.js ...args`. */
  static start(name: string, ns: string, args: string[]): NsProcess {
    if (!existsSync(CLI_MAIN)) throw new Error(`${CLI_MAIN} is missing: run npm run build first`);
    const env = { ...process.env };
    delete env.PEERPOST_HOME;
    delete env.NODE_OPTIONS;
    // No DHT: its public bootstrap nodes are addresses these tests must never send to, and its
    // traffic would keep NAT mappings open that the scenarios expect to expire.
    env.PEERPOST_NO_DHT = '1';
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, CLI_MAIN, ...args], {
      cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'],
    });
    return new NsProcess(name, child);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Call `f` for every future event. */
  onEvent(f: (e: Event) => void): void {
    this.listeners.push(f);
  }

  /** Resolve with the first event (already seen or future) that satisfies `pred`. */
  waitFor(pred: (e: Event) => boolean, what: string, timeoutMs = EVENT_WAIT_DEFAULT_MS): Promise<Event> {
    const seen = this.events.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((res, reject) => {
      const done = (e: Event): void => {
        clearTimeout(timer);
        res(e);
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`${this.name}: timed out after ${timeoutMs} ms waiting for ${what}; last events: ${
          JSON.stringify(this.events.slice(-6))}; stderr: ${this.stderr.slice(-600)}`));
      }, timeoutMs);
      this.waiters.push({ pred, resolve: done });
    });
  }

  /** Resolve true when `pred` holds for some event within `ms`, false otherwise (never rejects). */
  async seenWithin(pred: (e: Event) => boolean, ms: number): Promise<boolean> {
    try {
      await this.waitFor(pred, 'event', ms);
      return true;
    } catch {
      return false;
    }
  }

  line(text: string): void {
    if (this.running) this.child.stdin.write(`${text}\n`);
  }

  /** Send `signal` (default SIGTERM) to this process only and wait for its exit, SIGKILL after `graceMs`. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<number | null> {
    if (!this.running) return this.exited;
    this.child.kill(signal);
    const timer = setTimeout(() => {
      if (this.running) this.child.kill('SIGKILL');
    }, graceMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}
