/**
 * A long-running CLI process (`peerpost node|client|peer ... --json`) driven through its standard
 * input, with its JSON-line events collected, for tests that use peerpost as a user would.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { CLI_MAIN, ROOT, ensureBuilt } from './cli.js';

export type Event = Record<string, unknown> & { event?: string };

export class ChatProcess {
  readonly events: Event[] = [];
  stderr = '';
  private waiters: Array<{ pred: (e: Event) => boolean; resolve: (e: Event) => void }> = [];
  private exited: Promise<number | null>;

  private constructor(readonly child: ChildProcessWithoutNullStreams) {
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
          e = JSON.parse(line) as Event;
        } catch {
          e = { event: 'text', line };
        }
        this.events.push(e);
        this.waiters = this.waiters.filter((w) => (w.pred(e) ? (w.resolve(e), false) : true));
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  }

  static start(args: string[]): ChatProcess {
    ensureBuilt();
    const env = { ...process.env };
    delete env.PEERPOST_HOME;
    delete env.NODE_OPTIONS;
    // Never HyperDHT's public nodes from a test (see runCli).
    env.PEERPOST_NO_DHT = '1';
    const child = spawn(process.execPath, [CLI_MAIN, ...args], { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    return new ChatProcess(child);
  }

  /** Resolve with the first event (already seen or future) that satisfies `pred`. */
  waitFor(pred: (e: Event) => boolean, what: string, timeoutMs = 15_000): Promise<Event> {
    const seen = this.events.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`timed out waiting for ${what}; events: ${JSON.stringify(this.events).slice(-1500)}; stderr: ${this.stderr.slice(-800)}`));
      }, timeoutMs);
      const done = (e: Event): void => {
        clearTimeout(timer);
        resolve(e);
      };
      this.waiters.push({ pred, resolve: done });
    });
  }

  line(text: string): void {
    this.child.stdin.write(`${text}\n`);
  }

  /** SIGTERM, then wait for the exit code. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    return this.exited;
  }

  exit(): Promise<number | null> {
    return this.exited;
  }
}
