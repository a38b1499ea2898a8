/**
 * Reassembly of chunked messages on the receiving side. Chunks may come lost, duplicated or in any
 * order; a message is complete when every index 0..count-1 has arrived. Bounds, and what happens
 * at each (the dropped chunks were never receipted, so their sender sends them again):
 *   partialMessagesMax  messages being assembled; a new one drops the oldest
 *   partialBytesMax     chunk bytes held in all; beyond, the oldest messages are dropped
 *   partialAgeMaxMs     a message not complete this long after its first chunk is dropped
 */
export interface ChunkIn {
  readonly index: number;
  readonly count: number;
  readonly innerKind: number;
  readonly data: Uint8Array;
}

export interface Assembled {
  readonly body: Uint8Array;
  readonly innerKind: number;
  /** DELIVER ids of every chunk seen for this message (each gets a receipt). */
  readonly chunkIds: string[];
  /** Sender's peer and time, from the first chunk. */
  readonly fromPeer: string;
  readonly sentAtMs: number;
}

interface Partial {
  readonly count: number;
  readonly innerKind: number;
  readonly pieces: Map<number, Uint8Array>;
  readonly chunkIds: Set<string>;
  bytes: number;
  readonly firstAtMs: number;
  readonly fromPeer: string;
  readonly sentAtMs: number;
}

export interface ReassemblyLimits {
  partialMessagesMax: number;
  partialBytesMax: number;
  partialAgeMaxMs: number;
}

export type ChunkResult =
  | { status: 'partial' }
  | { status: 'mismatch' }
  | { status: 'complete'; message: Assembled };

export class Reassembler {
  private readonly partials = new Map<string, Partial>();
  private bytes = 0;

  constructor(
    private readonly limits: ReassemblyLimits,
    /** Told why a partial message was dropped: 'partial_evicted' or 'partial_expired'. */
    private readonly onDrop: (reason: string) => void,
  ) {}

  get size(): number {
    return this.partials.size;
  }

  get heldBytes(): number {
    return this.bytes;
  }

  /** Add one chunk of message `key` (sender and message id), received under DELIVER id `chunkId`. */
  add(now: number, key: string, chunkId: string, c: ChunkIn, meta: { fromPeer: string; sentAtMs: number }): ChunkResult {
    let p = this.partials.get(key);
    if (p && (p.count !== c.count || p.innerKind !== c.innerKind)) return { status: 'mismatch' };
    if (!p) {
      while (this.partials.size >= this.limits.partialMessagesMax) this.dropOldest('partial_evicted');
      p = { count: c.count, innerKind: c.innerKind, pieces: new Map(), chunkIds: new Set(), bytes: 0, firstAtMs: now, ...meta };
      this.partials.set(key, p);
    }
    p.chunkIds.add(chunkId);
    if (!p.pieces.has(c.index)) {
      p.pieces.set(c.index, c.data);
      p.bytes += c.data.length;
      this.bytes += c.data.length;
      while (this.bytes > this.limits.partialBytesMax && this.partials.size > 1) {
        const oldest = this.partials.keys().next().value!;
        if (oldest === key) break;
        this.drop(oldest, 'partial_evicted');
      }
    }
    if (p.pieces.size < p.count) return { status: 'partial' };
    this.partials.delete(key);
    this.bytes -= p.bytes;
    const body = new Uint8Array(Buffer.concat(Array.from({ length: p.count }, (_, i) => p.pieces.get(i)!)));
    return { status: 'complete', message: { body, innerKind: p.innerKind, chunkIds: [...p.chunkIds], fromPeer: p.fromPeer, sentAtMs: p.sentAtMs } };
  }

  /** When the oldest partial message expires, if any. */
  nextExpiry(): number | undefined {
    const first = this.partials.values().next();
    return first.done ? undefined : first.value.firstAtMs + this.limits.partialAgeMaxMs;
  }

  expire(now: number): void {
    for (const [k, p] of this.partials) {
      if (p.firstAtMs + this.limits.partialAgeMaxMs > now) break;
      this.drop(k, 'partial_expired');
    }
  }

  private dropOldest(reason: string): void {
    const first = this.partials.keys().next();
    if (!first.done) this.drop(first.value, reason);
  }

  private drop(key: string, reason: string): void {
    const p = this.partials.get(key);
    if (!p) return;
    this.partials.delete(key);
    this.bytes -= p.bytes;
    this.onDrop(reason);
  }
}
