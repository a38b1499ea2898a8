/**
 * A node: a Peer and a Client in one process on one UDP socket, as one sans-I/O machine. The
 * node serves its own clients and is itself a client of its own peer.
 *
 * Routing: a datagram from the network goes to the peer or to the client by its payload type
 * (PEER_BOUND_TYPES / CLIENT_BOUND_TYPES; a SESSION by its session id: our client's own session
 * goes to the client, any other to the peer; anything undecodable goes to the peer, which counts
 * the drop). A datagram that one half sends to the node's own address never touches the socket: it is
 * handed straight to the other half. Loopback hand-offs per call are bounded by LOOPBACK_STEPS_MAX
 * (far above what a handshake needs); past it, the rest waits for the next call.
 */
import { MsgType } from '../protocol/constants.js';
import { addrKey, type Addr, type Transmit } from '../core/types.js';
import type { Peer } from '../peer/index.js';
import type { Client } from '../client/index.js';
import type { ClientEvent } from '../client/types.js';

export const PEER_BOUND_TYPES: ReadonlySet<number> = new Set([
  MsgType.REGISTER, MsgType.HELLO, MsgType.REGISTER_PROOF, MsgType.DELIVER, MsgType.CERT_REQUEST,
  MsgType.DIR_LIST,
]);
export const CLIENT_BOUND_TYPES: ReadonlySet<number> = new Set([
  MsgType.REGISTER_AGAIN, MsgType.CHALLENGE, MsgType.COOKIE, MsgType.RESULT, MsgType.CERT,
  MsgType.DIR_PAGE, MsgType.ERROR,
]);
/** Offset of the session id in a SESSION datagram (after version and type). */
const SESSION_ID_AT = 2;

export const LOOPBACK_STEPS_MAX = 4096;

export class NodeMachine {
  private readonly out: Transmit[] = [];
  private outHead = 0;
  private readonly selfKey: string;
  /** When datagrams were handled and not yet routed (pollTransmit routes them). */
  private unpumpedAt: number | undefined;

  /**
   * @param self the node's address as its client and other clients reach it (the client's peer
   *   address must equal it, so that the client's datagrams to its peer stay in the process).
   */
  constructor(readonly peer: Peer, readonly client: Client, readonly self: Addr) {
    this.selfKey = addrKey(self);
  }

  handle(now: number, from: Addr, data: Uint8Array): void {
    const type = data.length >= 2 ? data[1]! : -1;
    if (CLIENT_BOUND_TYPES.has(type) || (type === MsgType.SESSION && this.clientSession(data))) this.client.handle(now, from, data);
    else this.peer.handle(now, from, data);
    // Routed at the next pollTransmit, so that a batch of datagrams is handled as one (the
    // client commits once for all of them).
    this.unpumpedAt = now;
  }

  /** A SESSION datagram in our client's own session comes from a peer of ours; any other goes to our peer. */
  private clientSession(data: Uint8Array): boolean {
    return data.length >= SESSION_ID_AT + 8 && this.client.ownsSession(data.subarray(SESSION_ID_AT, SESSION_ID_AT + 8));
  }

  handleTimeout(now: number): void {
    const p = this.peer.pollTimeout();
    if (p !== undefined && p <= now) this.peer.handleTimeout(now);
    const c = this.client.pollTimeout();
    if (c !== undefined && c <= now) this.client.handleTimeout(now);
    this.pump(now);
  }

  /** Call after a client API call (send, addContact ...) so its datagrams are routed. */
  pump(now: number): void {
    this.unpumpedAt = undefined;
    for (let steps = 0; steps < LOOPBACK_STEPS_MAX; steps++) {
      const fromPeer = this.peer.pollTransmit();
      const fromClient = fromPeer ? undefined : this.client.pollTransmit();
      const t = fromPeer ?? fromClient;
      if (!t) return;
      if (addrKey(t.to) !== this.selfKey) {
        this.out.push(t);
        continue;
      }
      // The other half of this node is the destination.
      if (fromPeer) this.client.handle(now, this.self, t.data);
      else this.peer.handle(now, this.self, t.data);
    }
  }

  pollTransmit(): Transmit | undefined {
    if (this.unpumpedAt !== undefined) this.pump(this.unpumpedAt);
    if (this.outHead >= this.out.length) {
      this.out.length = 0;
      this.outHead = 0;
      return undefined;
    }
    const t = this.out[this.outHead];
    this.out[this.outHead++] = undefined as unknown as Transmit;
    return t;
  }

  pollTimeout(): number | undefined {
    const p = this.peer.pollTimeout();
    const c = this.client.pollTimeout();
    if (p === undefined) return c;
    if (c === undefined) return p;
    return Math.min(p, c);
  }

  /** The client's next event; datagrams handled and not yet routed are routed first, so none is left behind. */
  pollEvent(): ClientEvent | undefined {
    if (this.unpumpedAt !== undefined) this.pump(this.unpumpedAt);
    return this.client.pollEvent();
  }
}
