/**
 * The simulator's lookup service for home records, standing in for the DHT: clients publish
 * their record (visible after a delay), senders' clients ask for one (Client.pollHomeRequest) and
 * get an answer after a delay, or none (lost: the client's resolution times out), or a stale one
 * (an older version of the record, or nothing when there is none). It runs on the simulated
 * network's clock as a machine with no datagrams, so a seed replays it exactly.
 */
import type { HomeRecord } from '../../src/core/home.js';
import type { Transmit } from '../../src/core/types.js';
import type { Rng } from './prng.js';

export interface DhtFaults {
  /** Delay of a publication and of an answer: delayMs plus up to jitterMs. */
  delayMs: number;
  jitterMs: number;
  /** A lookup gets no answer. */
  loss: number;
  /** A lookup gets an older version of the record (or none). */
  stale: number;
}

export const DHT_CALM: Omit<DhtFaults, 'delayMs' | 'jitterMs'> = { loss: 0, stale: 0 };

interface Due {
  readonly at: number;
  readonly seq: number;
  readonly run: () => void;
}

export class SimDht {
  /** Published versions per fingerprint, oldest first (each visible once its publication lands). */
  private readonly versions = new Map<string, HomeRecord[]>();
  private readonly due: Due[] = [];
  private seq = 0;
  readonly stats = { published: 0, lookups: 0, answered: 0, lost: 0, stale: 0 };

  constructor(
    private readonly rng: Rng,
    public faults: DhtFaults,
    private readonly answer: (asker: string, fp: string, record: HomeRecord | null) => void,
  ) {}

  publish(now: number, fp: string, record: HomeRecord): void {
    this.stats.published++;
    this.later(now, () => {
      const list = this.versions.get(fp) ?? [];
      if (list.length > 0 && list[list.length - 1]!.seq >= record.seq) return;
      list.push(record);
      if (list.length > 8) list.shift();
      this.versions.set(fp, list);
    });
  }

  /** `asker` (a client's name) resolves `fp`. */
  lookup(now: number, asker: string, fp: string): void {
    this.stats.lookups++;
    if (this.faults.loss > 0 && this.rng.next() < this.faults.loss) {
      this.stats.lost++;
      return;
    }
    const stale = this.faults.stale > 0 && this.rng.next() < this.faults.stale;
    this.later(now, () => {
      const list = this.versions.get(fp) ?? [];
      let rec: HomeRecord | null = list[list.length - 1] ?? null;
      if (stale) {
        this.stats.stale++;
        rec = list.length > 1 ? list[this.rng.int(0, list.length - 2)]! : null;
      }
      this.stats.answered++;
      this.answer(asker, fp, rec);
    });
  }

  private later(now: number, run: () => void): void {
    const at = now + this.faults.delayMs + Math.round(this.rng.next() * this.faults.jitterMs);
    const d: Due = { at, seq: this.seq++, run };
    let i = this.due.length;
    while (i > 0 && (this.due[i - 1]!.at > at)) i--;
    this.due.splice(i, 0, d);
  }

  // A machine without datagrams: only its timer.
  handle(): void {}
  pollTransmit(): Transmit | undefined {
    return undefined;
  }
  pollTimeout(): number | undefined {
    return this.due[0]?.at;
  }
  handleTimeout(now: number): void {
    while (this.due.length > 0 && this.due[0]!.at <= now) this.due.shift()!.run();
  }
}
