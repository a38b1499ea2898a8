/**
 * The one thin I/O layer of a peerpost process: a node:dgram socket, one timer and a clock,
 * driving any sans-I/O machine of the shape handle / pollTransmit / pollTimeout / handleTimeout
 * (the peer, the client, or a wrapper that routes datagrams between them by payload type).
 *
 * - Clock: `now` is Date.now() (Unix epoch milliseconds) unless `clock` is given. The machines read
 *   certificate validity and cookie epochs from it, so it must be wall-clock time.
 * - Receive: every datagram goes to machine.handle(now, from, bytes). The driver drains
 *   pollTransmit() into a send batch and re-arms its single timer at pollTimeout() once per turn
 *   of the event loop (setImmediate), after all the datagrams that one read of the socket
 *   delivered were handled, so a machine that commits state before its first transmit (the
 *   client) commits once per batch of datagrams, not once per datagram. A machine that throws
 *   from pollTransmit (its store refused a commit) keeps its datagrams; the next drain tries again.
 * - Send: the batch is flushed in one setImmediate (several answers to a burst of datagrams leave
 *   together, off the receive path). Hosts are literal IPs and the socket's `lookup` is
 *   synchronous, so send() never waits for DNS. The batch is bounded by sendQueueMax datagrams;
 *   beyond it datagrams are dropped and counted (UDP may lose them anyway).
 * - Socket buffers: 4 MiB receive and send buffers where the kernel allows (it may cap them; the
 *   sizes obtained are logged at debug level).
 */
import dgram from 'node:dgram';
import { isIP } from 'node:net';
import { PeerpostError, UsageError } from '../core/errors.js';
import { silentLogger, type Addr, type Logger, type Transmit } from '../core/types.js';

/** What the driver drives. The peer, the client and the combined node all fit. */
export interface DatagramMachine {
  handle(now: number, from: Addr, data: Uint8Array): void;
  pollTransmit(): Transmit | undefined;
  pollTimeout(): number | undefined;
  handleTimeout(now: number): void;
}

export interface UdpDriverOptions {
  /** Literal IPv4 or IPv6 address to bind (udp4 or udp6 is chosen from it). */
  host: string;
  /** UDP port; 0 picks a free one. */
  port: number;
  logger?: Logger;
  /** Milliseconds on the Unix epoch; default Date.now. */
  clock?: () => number;
  /** Requested SO_RCVBUF and SO_SNDBUF; default 4 MiB. */
  socketBufferBytes?: number;
  /** Most datagrams waiting for the next flush; default 65,536. */
  sendQueueMax?: number;
}

export interface UdpDriverStats {
  datagramsIn: number;
  datagramsOut: number;
  sendErrors: number;
  sendQueueDrops: number;
  machineErrors: number;
}

export const SOCKET_BUFFER_BYTES_DEFAULT = 4 * 1024 * 1024;
export const SEND_QUEUE_MAX_DEFAULT = 65_536;

/** dgram's lookup hook: literal IPs only, answered synchronously (no DNS on the send path). */
function literalLookup(address: string, family: unknown, cb: (err: Error | null, address: string, family: number) => void): void {
  void family;
  const f = isIP(address);
  if (f) cb(null, address, f);
  else cb(new UsageError('PEERPOST_BAD_HOST', `${address} is not an IP address`), address, 4);
}

export class UdpDriver {
  readonly stats: UdpDriverStats = { datagramsIn: 0, datagramsOut: 0, sendErrors: 0, sendQueueDrops: 0, machineErrors: 0 };
  private readonly socket: dgram.Socket;
  private readonly log: Logger;
  private readonly clock: () => number;
  private readonly sendQueueMax: number;
  private batch: Transmit[] = [];
  private flushScheduled = false;
  private wakeScheduled = false;
  private timer: NodeJS.Timeout | undefined;
  private timerAt: number | undefined;
  private closed: Promise<void> | undefined;
  private readonly onSent = (err: Error | null): void => {
    if (err) {
      this.stats.sendErrors++;
      this.log.debug({ err: err.message }, 'send failed');
    }
  };

  private constructor(private readonly machine: DatagramMachine, socket: dgram.Socket, opts: UdpDriverOptions) {
    this.socket = socket;
    this.log = opts.logger ?? silentLogger;
    this.clock = opts.clock ?? Date.now;
    this.sendQueueMax = opts.sendQueueMax ?? SEND_QUEUE_MAX_DEFAULT;
    socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
    socket.on('error', (err) => this.log.warn({ err: err.message }, 'socket error'));
  }

  /** Bind a socket and start driving `machine`. Rejects with PEERPOST_PORT_IN_USE / PEERPOST_PORT_DENIED. */
  static async bind(machine: DatagramMachine, opts: UdpDriverOptions): Promise<UdpDriver> {
    if (!machine || typeof machine.handle !== 'function' || typeof machine.pollTransmit !== 'function') {
      throw new TypeError('machine must have handle, pollTransmit, pollTimeout and handleTimeout');
    }
    const family = isIP(opts.host);
    if (!family) throw new UsageError('PEERPOST_BAD_HOST', `bind address must be a literal IP address, not "${opts.host}"`);
    if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
      throw new UsageError('PEERPOST_BAD_PORT', `port must be an integer from 0 to 65535, not ${opts.port}`);
    }
    const socket = dgram.createSocket({ type: family === 6 ? 'udp6' : 'udp4', lookup: literalLookup as never });
    const where = family === 6 ? `[${opts.host}]:${opts.port}` : `${opts.host}:${opts.port}`;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        socket.close();
        if (err.code === 'EADDRINUSE') reject(new PeerpostError('PEERPOST_PORT_IN_USE', `port ${where} is already in use`, { cause: err }));
        else if (err.code === 'EACCES') reject(new PeerpostError('PEERPOST_PORT_DENIED', `no permission to bind port ${where}`, { cause: err }));
        else if (err.code === 'EADDRNOTAVAIL') reject(new PeerpostError('PEERPOST_ADDRESS_UNAVAILABLE', `address ${opts.host} is not on this host`, { cause: err }));
        else reject(new PeerpostError('PEERPOST_BIND_FAILED', `cannot bind ${where}: ${err.message}`, { cause: err }));
      };
      socket.once('error', onError);
      socket.bind({ address: opts.host, port: opts.port, exclusive: true }, () => {
        socket.off('error', onError);
        resolve();
      });
    });
    const d = new UdpDriver(machine, socket, opts);
    d.setBuffers(opts.socketBufferBytes ?? SOCKET_BUFFER_BYTES_DEFAULT);
    d.log.info({ address: d.addressText() }, 'listening');
    d.wake();
    return d;
  }

  address(): Addr {
    const a = this.socket.address();
    return { host: a.address, port: a.port };
  }

  /**
   * Call after queueing work on the machine outside handle() (for example a client API call):
   * drains its transmits and re-arms the timer.
   */
  wake(): void {
    if (this.closed) return;
    this.drain();
    this.rearm();
  }

  /** Stop the timer, send what is queued, close the socket. Idempotent. */
  close(): Promise<void> {
    this.closed ??= new Promise<void>((resolve) => {
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      this.flush();
      this.socket.close(() => resolve());
    });
    return this.closed;
  }

  private onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (this.closed) return;
    this.stats.datagramsIn++;
    try {
      this.machine.handle(this.clock(), { host: rinfo.address, port: rinfo.port }, msg);
    } catch (e) {
      this.stats.machineErrors++;
      this.log.error({ err: (e as Error).message, stack: (e as Error).stack }, 'machine failed on a datagram');
    }
    if (this.wakeScheduled) return;
    this.wakeScheduled = true;
    setImmediate(() => {
      this.wakeScheduled = false;
      this.wake();
    });
  }

  private onTimer(): void {
    this.timer = undefined;
    this.timerAt = undefined;
    if (this.closed) return;
    try {
      this.machine.handleTimeout(this.clock());
    } catch (e) {
      this.stats.machineErrors++;
      this.log.error({ err: (e as Error).message, stack: (e as Error).stack }, 'machine failed on a timeout');
    }
    this.wake();
  }

  private drain(): void {
    try {
      for (let t = this.machine.pollTransmit(); t; t = this.machine.pollTransmit()) {
        if (this.batch.length >= this.sendQueueMax) {
          this.stats.sendQueueDrops++;
          continue;
        }
        this.batch.push(t);
      }
    } catch (e) {
      this.stats.machineErrors++;
      this.log.error({ err: (e as Error).message }, 'machine failed to give its datagrams');
    }
    if (this.batch.length && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    const batch = this.batch;
    this.batch = [];
    for (const t of batch) {
      this.stats.datagramsOut++;
      try {
        this.socket.send(t.data, t.to.port, t.to.host, this.onSent);
      } catch (e) {
        this.onSent(e as Error);
      }
    }
  }

  /** Keep exactly one timer, at the machine's earliest deadline. */
  private rearm(): void {
    const at = this.machine.pollTimeout();
    if (at === this.timerAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = at;
    if (at === undefined) return;
    const delay = Math.min(Math.max(0, Math.ceil(at - this.clock())), 2 ** 31 - 1);
    this.timer = setTimeout(() => this.onTimer(), delay);
  }

  private setBuffers(bytes: number): void {
    try {
      this.socket.setRecvBufferSize(bytes);
      this.socket.setSendBufferSize(bytes);
    } catch (e) {
      this.log.debug({ err: (e as Error).message }, 'socket buffer size refused');
    }
    try {
      this.log.debug({ recv: this.socket.getRecvBufferSize(), send: this.socket.getSendBufferSize() }, 'socket buffers');
    } catch {
      // not available on every platform
    }
  }

  private addressText(): string {
    const a = this.address();
    return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
  }
}
