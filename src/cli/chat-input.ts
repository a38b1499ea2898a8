/**
 * The chat's input: lines from a terminal (readline with history and Tab completion) or a pipe,
 * collected from the moment the chat starts, so that nothing typed or piped before the node is
 * ready is lost, and handed to the command loop one at a time, in order.
 *
 * Bound: at most INPUT_LINES_QUEUED_MAX lines wait; beyond, the input is paused (a pipe's writer
 * waits, a terminal keeps what is typed) and resumed once the queue is half empty.
 */
import readline from 'node:readline';

export const INPUT_LINES_QUEUED_MAX = 256;

export type Completer = (line: string) => [string[], string];

export class ChatInput {
  readonly rl: readline.Interface;
  private readonly queue: string[] = [];
  private paused = false;
  private closed = false;
  private wake: (() => void) | undefined;

  constructor(input: NodeJS.ReadableStream, output: NodeJS.WritableStream | undefined, interactive: boolean, completer?: Completer) {
    this.rl = readline.createInterface({
      input,
      output: interactive ? output : undefined,
      terminal: interactive,
      ...(interactive && completer ? { completer } : {}),
      historySize: 200,
    });
    this.rl.on('line', (line) => {
      this.queue.push(line);
      if (this.queue.length >= INPUT_LINES_QUEUED_MAX && !this.paused) {
        this.paused = true;
        this.rl.pause();
      }
      this.notify();
    });
    this.rl.on('close', () => {
      this.closed = true;
      this.notify();
    });
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** The next line, or undefined once the input is closed and every line was taken. */
  async next(): Promise<string | undefined> {
    for (;;) {
      const line = this.queue.shift();
      if (line !== undefined) {
        if (this.paused && this.queue.length <= INPUT_LINES_QUEUED_MAX / 2) {
          this.paused = false;
          this.rl.resume();
        }
        return line;
      }
      if (this.closed) return undefined;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  /** Lines waiting to be taken. */
  get waiting(): number {
    return this.queue.length;
  }

  /** Stop reading; next() returns what is queued, then undefined. */
  close(): void {
    this.rl.close();
  }

  /** Resolves a pending next() with undefined (used when the chat ends for another reason). */
  interrupt(): void {
    this.closed = true;
    this.notify();
  }
}
