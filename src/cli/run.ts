/**
 * The command-line runner: global options, strict parsing, and the one place where errors become
 * one line on stderr and an exit code. Exit codes: 0 success, 1 a PeerpostError or an unexpected
 * error, 2 a usage error (UsageError, or an option yargs refuses), 141 (128 + SIGPIPE) when the
 * reader of stdout went away (`peerpost inbox | head -1`): the program ends quietly, as a shell
 * tool killed by SIGPIPE would. A stack trace is printed only with --log-level debug or trace.
 * With --json, the error is also one JSON object on stdout: {"error":{"code","message","exitCode"}}.
 * With no arguments at all, the command list is printed (exit 0).
 */
import { readFileSync } from 'node:fs';
import yargs, { type Argv, type CommandModule } from 'yargs';
import { PeerpostError, UsageError } from '../core/errors.js';
import { LOG_LEVELS, processIo, type CliIo, type GlobalArgs } from './context.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
/** 128 + SIGPIPE: what a shell reports for a program whose output pipe closed. */
export const EXIT_PIPE = 141;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyCommand = CommandModule<GlobalArgs, any>;

/** The package version, read from package.json two folders up (src/cli or dist/cli). */
export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Declare the global options on a parser. */
export function globalOptions(y: Argv): Argv<GlobalArgs> {
  return y
    .option('home', {
      type: 'string',
      describe: 'home folder (default: $PEERPOST_HOME, else $XDG_CONFIG_HOME/peerpost, else ~/.config/peerpost)',
      requiresArg: true,
      global: true,
    })
    .option('json', { type: 'boolean', default: false, describe: 'print results as one JSON object', global: true })
    .option('log-level', {
      choices: LOG_LEVELS,
      describe: 'log level (default: warn; info for `peer`)',
      requiresArg: true,
      global: true,
    })
    .option('log-file', { type: 'string', describe: 'append logs (JSON lines) to this file instead of stderr', requiresArg: true, global: true });
}

/** Parse `args` (without node and script), run the chosen command, and return the exit code. */
export async function runCli(commands: readonly AnyCommand[], args: readonly string[], io: CliIo = processIo): Promise<number> {
  let parser = globalOptions(yargs([...args]))
    .scriptName('peerpost')
    .usage('$0 <command> [options]')
    .strict()
    .demandCommand(1, 'a command is needed; see peerpost --help')
    .recommendCommands()
    .help()
    .alias('help', 'h')
    .version(packageVersion())
    .wrap(Math.min(100, process.stdout.columns ?? 100))
    .exitProcess(false)
    .fail((msg, err) => {
      // Called for validation failures (msg) and for errors thrown by handlers (err).
      throw err ?? new UsageError('PEERPOST_USAGE', msg ?? 'invalid command line');
    });
  for (const c of commands) parser = parser.command(c);
  // yargs prints --help and --version through console.log; route that text to io.stdout.
  const restore = redirectConsoleLog(io);
  try {
    if (args.length === 0) {
      // `peerpost` alone: the command list, as --help shows it.
      io.stdout.write(`${await parser.getHelp()}\n`);
      return EXIT_OK;
    }
    await parser.parseAsync();
    return EXIT_OK;
  } catch (e) {
    if (isEpipe(e)) return EXIT_PIPE;
    const code = reportError(e, io, wantsStack(args));
    if (args.includes('--json')) writeQuietly(io.stdout, `${JSON.stringify({ error: errorJson(e), exitCode: code })}\n`);
    return code;
  } finally {
    restore();
  }
}

/** True for the error of a write to a pipe whose reader is gone. */
export function isEpipe(e: unknown): boolean {
  return (e as NodeJS.ErrnoException)?.code === 'EPIPE';
}

function writeQuietly(w: CliIo['stdout'], s: string): void {
  try {
    w.write(s);
  } catch {
    // stdout is gone; the exit code still tells.
  }
}

/** The `error` object of --json output: a stable code and the one-line message. */
export function errorJson(e: unknown): { code: string; message: string } {
  const code = e instanceof PeerpostError || e instanceof UsageError ? e.code : (e as NodeJS.ErrnoException)?.code ?? (e instanceof Error && e.name === 'YError' ? 'PEERPOST_USAGE' : 'PEERPOST_UNEXPECTED');
  const message = (e instanceof Error ? e.message : String(e)).replace(/\s*\n\s*/g, ' ').trim();
  return { code: String(code), message };
}

/**
 * End quietly when stdout's reader goes away: an EPIPE on stdout (or stderr) exits with EXIT_PIPE
 * at once, without a stack trace. Installed once by main.ts.
 */
export function exitQuietlyOnEpipe(streams: NodeJS.WriteStream[] = [process.stdout, process.stderr]): void {
  for (const s of streams) {
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(EXIT_PIPE);
      throw e;
    });
  }
}

/** Print one line for `e` on stderr and return the exit code. */
export function reportError(e: unknown, io: CliIo, withStack: boolean): number {
  const oneLine = (s: string): string => s.replace(/\s*\n\s*/g, ' ').trim();
  let code: number;
  let text: string;
  if (e instanceof UsageError) {
    code = EXIT_USAGE;
    text = e.message;
  } else if (e instanceof PeerpostError) {
    code = EXIT_FAILURE;
    text = e.message;
  } else if (e instanceof Error && (e as NodeJS.ErrnoException).code === undefined && e.name === 'YError') {
    code = EXIT_USAGE;
    text = e.message;
  } else {
    code = EXIT_FAILURE;
    text = `unexpected error: ${e instanceof Error ? e.message : String(e)}`;
  }
  io.stderr.write(`peerpost: ${oneLine(text)}\n`);
  if (withStack && e instanceof Error && e.stack) io.stderr.write(`${e.stack}\n`);
  return code;
}

/** True if the raw arguments ask for debug or trace logging (known even when parsing failed). */
export function wantsStack(args: readonly string[]): boolean {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const v = a.startsWith('--log-level=') ? a.slice('--log-level='.length) : a === '--log-level' ? args[i + 1] : undefined;
    if (v === 'debug' || v === 'trace') return true;
  }
  return false;
}

function redirectConsoleLog(io: CliIo): () => void {
  if (io === processIo) return () => {};
  const saved = console.log;
  console.log = (...parts: unknown[]) => {
    io.stdout.write(`${parts.map(String).join(' ')}\n`);
  };
  return () => {
    console.log = saved;
  };
}
