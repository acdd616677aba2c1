// Error feedback for lossy codecs (the agent's side): what a codec left out of one update is added to the next,
// so nothing is lost, only delayed. After any number of steps, the sum of what was sent plus the residual
// equals the sum of what was meant to be sent (up to float rounding), which is why top-k at 1% still trains.
export class ErrorFeedback {
  readonly residual: Float32Array;

  constructor(paramCount: number) {
    this.residual = new Float32Array(paramCount);
  }

  /** values += residual, in place: the update to encode now. */
  compensate(values: Float32Array): void {
    this.checkLength(values);
    const r = this.residual;
    for (let i = 0; i < values.length; i++) values[i] += r[i];
  }

  /** residual = intended - sent: what the codec dropped this time, carried to the next update. */
  record(intended: Float32Array, sent: Float32Array): void {
    this.checkLength(intended);
    this.checkLength(sent);
    const r = this.residual;
    for (let i = 0; i < r.length; i++) r[i] = intended[i] - sent[i];
  }

  reset(): void {
    this.residual.fill(0);
  }

  private checkLength(values: Float32Array): void {
    if (values.length !== this.residual.length) throw new RangeError(`error feedback holds ${this.residual.length} values, got ${values.length}`);
  }
}
