/**
 * Retransmission timer per destination peer, RFC 6298: SRTT and RTTVAR from samples, RTO =
 * SRTT + max(G, 4 * RTTVAR), clamped to [RTO_MIN_MS, RTO_MAX_MS], starting at RTO_INITIAL_MS;
 * exponential backoff for retransmissions. Karn's rule is the caller's: only answers to a datagram
 * sent once are sampled.
 */
export const RTO_INITIAL_MS = 1000;
export const RTO_MIN_MS = 200;
export const RTO_MAX_MS = 30_000;
/** Clock granularity G of RFC 6298 section 2. */
export const RTO_GRANULARITY_MS = 1;

export class RttEstimator {
  srttMs: number | undefined;
  rttvarMs = 0;
  rtoMs = RTO_INITIAL_MS;

  /** Feed one round-trip sample (from a datagram that was not retransmitted). */
  sample(rttMs: number): void {
    if (!Number.isFinite(rttMs) || rttMs < 0) return;
    if (this.srttMs === undefined) {
      this.srttMs = rttMs;
      this.rttvarMs = rttMs / 2;
    } else {
      this.rttvarMs = 0.75 * this.rttvarMs + 0.25 * Math.abs(this.srttMs - rttMs);
      this.srttMs = 0.875 * this.srttMs + 0.125 * rttMs;
    }
    this.rtoMs = clamp(this.srttMs + Math.max(RTO_GRANULARITY_MS, 4 * this.rttvarMs));
  }

  /** The timeout for the `attempt`-th transmission (0 = first), doubled each time, capped. */
  timeoutMs(attempt: number): number {
    return Math.min(RTO_MAX_MS, this.rtoMs * 2 ** Math.min(attempt, 16));
  }
}

function clamp(ms: number): number {
  return Math.min(RTO_MAX_MS, Math.max(RTO_MIN_MS, Math.ceil(ms)));
}
