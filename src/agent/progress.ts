// What the agent tells its operator every few seconds: rounds, samples, speed, loss, and how much of the
// time it actually spent computing (compute utilisation). Low utilisation means the node waits on the
// coordinator or the network more than it trains. Pure: the clock is injected.

export interface RoundRecord {
  /** Clock readings (ms) when the round's work started and when its update was sent. */
  startedAt: number;
  endedAt: number;
  /** Time spent in the trainer (parameters in, gradients computed) during the round. */
  computeMs: number;
  samples: number;
  loss: number;
}

export interface Utilisation {
  /** Time computing over wall time since the agent started. */
  sinceStart: number;
  /** Time computing over the wall time the last `rounds` rounds spanned (first start to last end); null before any. */
  recent: number | null;
  rounds: number;
}

export class ProgressMeter {
  private startedAt = 0;
  private computeMs = 0;
  private recentRounds: RoundRecord[] = [];
  private interval = { since: 0, rounds: 0, samples: 0, rejected: 0, clipped: 0 };
  private lastLoss = Number.NaN;

  constructor(
    private readonly now: () => number = () => performance.now(),
    private readonly window = 20,
  ) {
    this.restart();
  }

  /** Forgets everything and counts from now (the agent calls it when it starts connecting). */
  restart(): void {
    this.startedAt = this.now();
    this.computeMs = 0;
    this.recentRounds = [];
    this.interval = { since: this.startedAt, rounds: 0, samples: 0, rejected: 0, clipped: 0 };
    this.lastLoss = Number.NaN;
  }

  /**
   * Starts the recent-rounds window afresh (a new session): the time between sessions is nobody's round trip, and
   * the recent utilisation (reported with heartbeats) is about the session being trained.
   */
  startWindow(): void {
    this.recentRounds = [];
  }

  recordRound(round: RoundRecord): void {
    this.computeMs += round.computeMs;
    this.recentRounds.push(round);
    if (this.recentRounds.length > this.window) this.recentRounds.shift();
    this.interval.rounds += 1;
    this.interval.samples += round.samples;
    this.lastLoss = round.loss;
  }

  recordRejected(): void {
    this.interval.rejected += 1;
  }

  /** An update accepted but counted clipped: its norm was over the coordinator's relative limit. */
  recordClipped(): void {
    this.interval.clipped += 1;
  }

  utilisation(): Utilisation {
    const elapsed = this.now() - this.startedAt;
    const sinceStart = elapsed > 0 ? Math.min(1, this.computeMs / elapsed) : 0;
    const rounds = this.recentRounds.length;
    if (rounds === 0) return { sinceStart, recent: null, rounds };
    const span = this.recentRounds[rounds - 1].endedAt - this.recentRounds[0].startedAt;
    const busy = this.recentRounds.reduce((sum, r) => sum + r.computeMs, 0);
    return { sinceStart, recent: span > 0 ? Math.min(1, busy / span) : null, rounds };
  }

  /** The periodic log line, or null when no round finished since the last one. Starts the next interval. */
  takeLine(): string | null {
    const now = this.now();
    const { rounds, samples, rejected, clipped, since } = this.interval;
    if (rounds === 0) return null;
    const seconds = Math.max((now - since) / 1000, 1e-3);
    const u = this.utilisation();
    const recent = u.recent === null ? '' : `, ${percent(u.recent)} over the last ${u.rounds} round${u.rounds === 1 ? '' : 's'}`;
    this.interval = { since: now, rounds: 0, samples: 0, rejected: 0, clipped: 0 };
    return (
      `${rounds} rounds, ${samples} samples in ${seconds.toFixed(0)} s (${Math.round(samples / seconds)} samples/s), last loss ${this.lastLoss.toFixed(4)}` +
      (rejected ? `, ${rejected} rejected` : '') +
      (clipped ? `, ${clipped} accepted clipped to the coordinator's norm limit` : '') +
      `; computing ${percent(u.sinceStart)} of the time since start${recent}`
    );
  }
}

function percent(fraction: number): string {
  return `${Math.round(fraction * 100)}%`;
}
