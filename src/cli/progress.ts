/**
 * A progress line on stderr while a command waits for the network, only when stderr is a terminal
 * and not under --json: `waiting for X ... 3 s (up to 15 s)`, rewritten once a second and erased
 * when done. Nothing at all otherwise, so scripts and logs see no noise.
 */
import type { CliContext } from './context.js';

export const PROGRESS_TICK_MS = 1000;

export function progress(ctx: CliContext, what: string, limitMs: number, isTty = process.stderr.isTTY === true): { done(): void } {
  if (!isTty || ctx.json) return { done: () => {} };
  const started = Date.now();
  const limit = Math.round(limitMs / 1000);
  const draw = (): void => {
    const s = Math.floor((Date.now() - started) / 1000);
    ctx.io.stderr.write(`\r\x1b[2K${what} ... ${s} s (up to ${limit} s)`);
  };
  draw();
  const timer = setInterval(draw, PROGRESS_TICK_MS);
  return {
    done: () => {
      clearInterval(timer);
      ctx.io.stderr.write('\r\x1b[2K');
    },
  };
}
