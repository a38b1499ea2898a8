/**
 * A client's home: the peers it is registered with, in the order senders should try them, as a
 * signed home record announces it (the record's codec, signature and publication live with the
 * record). This is the shape the client works with, whatever resolved it: a record from the
 * DHT, a `fp@host:port` hint, or the simulator's lookup service.
 */

/** One peer a client is registered with. */
export interface HomePeer {
  readonly host: string;
  readonly port: number;
  /** SHA-256 of the peer's certificate DER, 32 bytes. */
  readonly fingerprint: Uint8Array;
}

/** What a client announces about itself: where to reach it, and how recent this is. */
export interface HomeRecord {
  /** SHA-256 of the client's certificate DER, 32 bytes. */
  readonly fingerprint: Uint8Array;
  /** In the order senders should try them; at least one. */
  readonly peers: readonly HomePeer[];
  /** Strictly increasing per identity: a record is accepted only over an older one. */
  readonly seq: number;
  /** When the record was made, ms since the epoch. */
  readonly timeMs: number;
}
