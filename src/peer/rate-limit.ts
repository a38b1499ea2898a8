/**
 * Per-source-IP token buckets. Bounded: at most `bucketsMax` buckets; when a new IP arrives at the
 * bound, the least recently created bucket is forgotten (that IP starts again with a full bucket).
 */
export interface RateLimitOptions {
  /** Tokens added per second. */
  perSecond: number;
  /** Bucket capacity (largest burst). */
  burst: number;
  /** Most IPs tracked at once. */
  bucketsMax: number;
}

interface Bucket {
  tokens: number;
  lastMs: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(readonly opts: RateLimitOptions) {
    for (const k of ['perSecond', 'burst', 'bucketsMax'] as const) {
      if (!(opts[k] > 0)) throw new TypeError(`rateLimit.${k} must be a positive number`);
    }
  }

  get size(): number {
    return this.buckets.size;
  }

  /** Take one token for `ip`; false when its bucket is empty. */
  take(nowMs: number, ip: string): boolean {
    let b = this.buckets.get(ip);
    if (!b) {
      if (this.buckets.size >= this.opts.bucketsMax) {
        const oldest = this.buckets.keys().next();
        if (!oldest.done) this.buckets.delete(oldest.value);
      }
      b = { tokens: this.opts.burst, lastMs: nowMs };
      this.buckets.set(ip, b);
    } else if (nowMs > b.lastMs) {
      b.tokens = Math.min(this.opts.burst, b.tokens + ((nowMs - b.lastMs) * this.opts.perSecond) / 1000);
      b.lastMs = nowMs;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}
