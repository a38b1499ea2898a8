/**
 * The I/O host shared by the embedding classes: it owns one UdpDriver for a sans-I/O machine,
 * takes the machine's events out after every step, and hands them to a callback in the next
 * turn of the event loop (so listeners never run inside the machine).
 */
import { randomBytes } from 'node:crypto';
import type { Random } from '../core/types.js';
import type { DatagramMachine } from '../net/udp-driver.js';

export const cryptoRandom: Random = (n) => new Uint8Array(randomBytes(n));

export interface EventSource<E> {
  pollEvent(): E | undefined;
}

/** Wraps a machine so that its events are collected after each handle / timeout. */
export class EventedMachine<E> implements DatagramMachine {
  private scheduled = false;
  constructor(
    private readonly inner: DatagramMachine & EventSource<E>,
    private readonly onEvent: (e: E) => void,
    /** After each collection of events (the Messenger answers home resolutions there). */
    private readonly afterEvents?: () => void,
  ) {}
  handle(now: number, from: { host: string; port: number }, data: Uint8Array): void {
    this.inner.handle(now, from, data);
    this.schedule();
  }
  pollTransmit() {
    return this.inner.pollTransmit();
  }
  pollTimeout() {
    return this.inner.pollTimeout();
  }
  handleTimeout(now: number): void {
    this.inner.handleTimeout(now);
    this.schedule();
  }
  /** Collect events now (after a user call on the machine). */
  schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // After the datagrams of this turn were handled (the driver handles a whole read before it
    // drains), so that the client's commit before its first event covers all of them.
    setImmediate(() => {
      this.scheduled = false;
      for (let e = this.inner.pollEvent(); e; e = this.inner.pollEvent()) this.onEvent(e);
      this.afterEvents?.();
    });
  }
}
