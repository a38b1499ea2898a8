/**
 * The child side of the flood test's processes: an IPC channel to the parent, a hard lifetime
 * (the child exits by itself even if the parent is gone), and exit when the parent disconnects.
 */
export type ToParent = { type: string; [k: string]: unknown };
export type ToChild = { type: 'start' | 'stop'; [k: string]: unknown };

/** Start the child's bounds; `onMessage` gets every message from the parent. */
export function childInit(lifetimeMs: number, onMessage: (m: ToChild) => void | Promise<void>): void {
  if (!process.send) throw new Error('this script runs as a child of scripts/flood/run.ts');
  const bound = setTimeout(() => process.exit(3), lifetimeMs);
  bound.unref();
  process.on('disconnect', () => process.exit(0));
  process.on('message', (m: ToChild) => {
    Promise.resolve(onMessage(m)).catch((e: unknown) => {
      toParent({ type: 'error', message: (e as Error).stack ?? String(e) });
      process.exit(1);
    });
  });
}

export function toParent(m: ToParent): void {
  process.send?.(m);
}

/** The value of `--name` in argv, or `dflt`. */
export function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] ?? dflt : dflt;
}
