/**
 * Run the built CLI (`node dist/cli/main.js ...`) from tests. `npm test` builds first; when
 * dist/cli/main.js is missing or older than a file under src/, the first call builds once with
 * `tsc -p src/tsconfig.json` (type errors elsewhere in the tree do not stop tsc from emitting).
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI_MAIN = join(ROOT, 'dist', 'cli', 'main.js');
/** A CLI run that takes longer than this is killed and reported as a failure. */
export const CLI_RUN_TIMEOUT_MS = 20_000;
const BUILD_TIMEOUT_MS = 120_000;

let built = false;

function newestMtimeMs(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtimeMs(p));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/** Build dist/ once per process if it is missing or older than src/. */
export function ensureBuilt(): void {
  if (built) return;
  const stale = !existsSync(CLI_MAIN) || statSync(CLI_MAIN).mtimeMs < newestMtimeMs(join(ROOT, 'src'));
  if (stale) {
    try {
      execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'src', 'tsconfig.json')], {
        cwd: ROOT,
        stdio: 'ignore',
        timeout: BUILD_TIMEOUT_MS,
      });
    } catch {
      // tsc exits non-zero on type errors but still emits; only a missing output is fatal.
    }
    if (!existsSync(CLI_MAIN)) throw new Error(`build did not produce ${CLI_MAIN}`);
  }
  built = true;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunCliOptions {
  /**
   * Extra environment variables (merged over a copy of process.env without PEERPOST_HOME, and with
   * PEERPOST_NO_DHT=1 so that commands never try HyperDHT's public nodes; a test of the DHT sets
   * PEERPOST_NO_DHT: undefined and its own --dht-bootstrap).
   */
  env?: Record<string, string | undefined>;
  /** Text for standard input; default none (stdin closed). */
  input?: string;
  timeoutMs?: number;
}

/** Spawn `node dist/cli/main.js ...args` and collect its output and exit code. */
export function runCli(args: readonly string[], opts: RunCliOptions = {}): Promise<CliResult> {
  ensureBuilt();
  const env: NodeJS.ProcessEnv = { ...process.env, PEERPOST_HOME: undefined, NODE_OPTIONS: undefined, PEERPOST_NO_DHT: '1', ...opts.env };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [CLI_MAIN, ...args], { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? CLI_RUN_TIMEOUT_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** A fresh temporary folder; removed by the returned cleanup function. */
export function tempDir(prefix = 'peerpost-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
