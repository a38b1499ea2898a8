/**
 * What every command gets: the global options, the resolved home folder, a pino logger and the
 * two output streams. Results go to stdout (text, or one JSON object with --json); notes, logs
 * and errors go to stderr (logs to --log-file when given).
 */
import { pino, type Logger as PinoLogger } from 'pino';
import { createRequire } from 'node:module';
import { UsageError } from '../core/errors.js';
import { checkHome, resolveHome } from '../identity/home.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Options every command accepts (declared once in main.ts). */
export interface GlobalArgs {
  home?: string;
  json: boolean;
  /** Unset: warn (one-shot commands and the chat stay quiet); `peer` defaults to info. */
  'log-level'?: LogLevel;
  'log-file'?: string;
}

/** Where a command writes. Tests and embedders may pass their own. */
export interface CliIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

export const processIo: CliIo = { stdout: process.stdout, stderr: process.stderr };

export interface CliContext {
  readonly home: string;
  readonly json: boolean;
  readonly log: PinoLogger;
  readonly io: CliIo;
  /** Print a result: `data` as one JSON line with --json, else the text lines. */
  result(data: Record<string, unknown>, text: readonly string[]): void;
  /** A note for the user on stderr (also in JSON mode, where stdout holds only the result). */
  note(line: string): void;
}

/** Build the context of a command from its parsed arguments. */
export function cliContext(argv: GlobalArgs, io: CliIo = processIo): CliContext {
  const home = resolveHome(argv.home);
  checkHome(home);
  const log = makeLogger(argv['log-level'] ?? 'warn', argv['log-file']);
  const json = argv.json;
  return {
    home,
    json,
    log,
    io,
    result(data, text) {
      io.stdout.write(json ? `${JSON.stringify(data)}\n` : text.map((l) => `${l}\n`).join(''));
    },
    note(line) {
      io.stderr.write(`${line}\n`);
    },
  };
}

/**
 * A pino logger: JSON lines appended synchronously to `file`; else to stderr, as JSON lines when
 * stderr is not a terminal and in pino-pretty's readable form when it is.
 */
export function makeLogger(level: LogLevel, file?: string, stderrIsTty = process.stderr.isTTY === true): PinoLogger {
  const opts = { level, base: { pid: process.pid } };
  if (file) {
    try {
      return pino(opts, pino.destination({ dest: file, sync: true, append: true, mkdir: true }));
    } catch (e) {
      throw new UsageError('PEERPOST_BAD_LOG_FILE', `cannot open the log file ${file}: ${(e as Error).message}`, { cause: e });
    }
  }
  if (stderrIsTty) {
    // Loaded only for a terminal: it adds ~0.2 s to every start.
    const pretty = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
    return pino(opts, pretty({ destination: 2, sync: true, colorize: true }));
  }
  return pino(opts, pino.destination({ dest: 2, sync: true }));
}

/** Column-aligned `label  value` lines for text output. */
export function table(rows: ReadonlyArray<readonly [string, string]>): string[] {
  const width = Math.max(0, ...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`);
}
