// Reconnect delays: exponential from minMs, doubling after each failed attempt up to maxMs, each delay
// jittered to 75-125% of the current base so that many agents cut off at once do not all come back in the
// same millisecond. Pure: the random source is injected, so the schedule is unit-tested.

export interface BackoffOptions {
  minMs: number;
  maxMs: number;
  /** [0, 1) like Math.random (the default). */
  random?: () => number;
}

export class Backoff {
  private baseMs: number;
  private readonly random: () => number;

  constructor(private readonly options: BackoffOptions) {
    if (!(options.minMs > 0) || !(options.maxMs >= options.minMs)) {
      throw new RangeError(`backoff needs 0 < minMs <= maxMs (got ${options.minMs} and ${options.maxMs})`);
    }
    this.baseMs = options.minMs;
    this.random = options.random ?? Math.random;
  }

  /** The delay before the next attempt; the one after will be based on twice as much, up to maxMs. */
  next(): number {
    const delay = Math.round(this.baseMs * (0.75 + this.random() * 0.5));
    this.baseMs = Math.min(this.baseMs * 2, this.options.maxMs);
    return delay;
  }

  /** After a link that worked: the next outage starts again from minMs. */
  reset(): void {
    this.baseMs = this.options.minMs;
  }
}
