/**
 * Run the built CLI in a real pseudo-terminal, through util-linux `script` (no native module): its
 * stdin and stdout are a terminal, what the test writes is typed, what it reads is the screen's
 * byte stream. Waits are for output matching a pattern, with a bound; never sleeps.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { CLI_MAIN, ROOT, ensureBuilt } from './cli.js';

/** True when `script` (util-linux) can run a command in a pseudo-terminal here. */
export function ptyAvailable(): boolean {
  const r = spawnSync('script', ['-qfec', 'true', '/dev/null'], { timeout: 5000 });
  return r.status === 0;
}

const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

export class PtyProcess {
  output = '';
  private waiters: Array<{ re: RegExp; from: number; resolve: (m: RegExpExecArray) => void }> = [];
  private readonly exited: Promise<number | null>;

  private constructor(readonly child: ChildProcessWithoutNullStreams) {
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      this.output += d;
      this.waiters = this.waiters.filter((w) => {
        const m = w.re.exec(this.output.slice(w.from));
        if (m) w.resolve(m);
        return !m;
      });
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (this.output += d));
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  }

  /** `peerpost ...args` in a terminal of 100 columns; `env` is merged over a copy of process.env (with PEERPOST_NO_DHT=1, as runCli). */
  static start(args: readonly string[], env: Record<string, string | undefined> = {}): PtyProcess {
    ensureBuilt();
    const e: NodeJS.ProcessEnv = { ...process.env, PEERPOST_HOME: undefined, NODE_OPTIONS: undefined, COLUMNS: '100', LINES: '40', TERM: 'xterm', PEERPOST_NO_DHT: '1', ...env };
    for (const k of Object.keys(e)) if (e[k] === undefined) delete e[k];
    const cmd = [process.execPath, CLI_MAIN, ...args].map(shellQuote).join(' ');
    const child = spawn('script', ['-qfec', cmd, '/dev/null'], { cwd: ROOT, env: e, stdio: ['pipe', 'pipe', 'pipe'] });
    return new PtyProcess(child);
  }

  /** Resolve with the first match of `re` in the output after offset `from` (default: anywhere). */
  waitFor(re: RegExp, what: string, timeoutMs = 15_000, from = 0): Promise<RegExpExecArray> {
    const m = re.exec(this.output.slice(from));
    if (m) return Promise.resolve(m);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`timed out waiting for ${what}; output: ${JSON.stringify(this.output.slice(-1500))}`));
      }, timeoutMs);
      const done = (x: RegExpExecArray): void => {
        clearTimeout(timer);
        resolve(x);
      };
      this.waiters.push({ re, from, resolve: done });
    });
  }

  /** Type `text` (a line needs its own "\r"). */
  type(text: string): void {
    this.child.stdin.write(text);
  }

  exit(): Promise<number | null> {
    return this.exited;
  }

  /** Ctrl-D on the terminal, then SIGTERM to `script` if it has not ended. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    return this.exited;
  }
}
