// Test-set evaluation, one at a time, in the evaluator worker (started per session, closed when it ends).
// Periodic evaluations come from the outbox (every `evalEvery` committed rounds); the engine asks for the
// ones that decide completion. Results go back to the engine as events.
import type { OutboxRecord } from '../core/engine/committed';
import type { EvaluationPurpose } from '../core/engine/events';
import type { Evaluator } from '../core/ports';
import type { ModelName, SessionConfig } from '../core/types';
import type { ModelStore } from './model-store';
import type { OutboxConsumer } from './outbox';

export type EvaluationResult =
  | { ok: true; round: number; modelVersion: number; loss: number; accuracy: number }
  | { ok: false; round: number; message: string };

export interface EvaluationsDeps {
  createEvaluator(model: ModelName, dataset: string): Promise<Evaluator>;
  model: ModelStore;
  /** The session's config and durable round as the engine knows them now. */
  session(sessionId: number): { config: SessionConfig; round: number } | null;
  /** Hands a result to the engine. */
  report(sessionId: number, purpose: EvaluationPurpose, result: EvaluationResult): void;
  log(level: 'info' | 'warn' | 'error', message: string): void;
}

export class Evaluations implements OutboxConsumer {
  readonly name = 'evaluation';
  private evaluator: Promise<Evaluator | null> = Promise.resolve(null);
  private evaluatorSession: number | null = null;
  /** The evaluator of the session, not started until its first evaluation: a worker with tfjs and the test set
   * in memory is the coordinator's largest fixed cost, and a session may never evaluate (or not for a while). */
  private notStarted: { model: ModelName; dataset: string } | null = null;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: EvaluationsDeps) {}

  /** For /health: no session to evaluate (idle), its evaluator loading or loaded (up), or unavailable (down). */
  private loadError: string | null = null;

  start(sessionId: number, model: ModelName, dataset: string): void {
    void this.stop();
    this.evaluatorSession = sessionId;
    this.loadError = null;
    this.notStarted = { model, dataset };
  }

  /** The session's evaluator, started on first use. */
  private evaluatorNow(): Promise<Evaluator | null> {
    const pending = this.notStarted;
    if (pending) {
      this.notStarted = null;
      const sessionId = this.evaluatorSession;
      this.evaluator = this.deps.createEvaluator(pending.model, pending.dataset).catch((error) => {
        const message = error instanceof Error ? error.message : String(error);
        if (this.evaluatorSession === sessionId) this.loadError = message;
        this.deps.log('error', `test-set evaluation unavailable: ${message}`);
        return null;
      });
    }
    return this.evaluator;
  }

  health(): { status: 'up' | 'down' | 'idle'; detail: string | null } {
    if (this.evaluatorSession === null) return { status: 'idle', detail: 'no session to evaluate' };
    if (this.loadError !== null) return { status: 'down', detail: this.loadError };
    return { status: 'up', detail: `evaluating session ${this.evaluatorSession}` };
  }

  async stop(): Promise<void> {
    const evaluator = this.evaluator;
    this.evaluator = Promise.resolve(null);
    this.evaluatorSession = null;
    this.notStarted = null;
    await this.chain;
    const closing = await evaluator;
    await closing?.close().catch((error) => this.deps.log('warn', `closing the evaluator failed: ${error instanceof Error ? error.message : String(error)}`));
  }

  handle(record: OutboxRecord, catchingUp: boolean): void {
    const event = record.event;
    if (catchingUp || event.kind !== 'round-committed') return;
    const session = this.deps.session(event.sessionId);
    // Only the model as it is now can be evaluated: a round the model has already moved past is skipped.
    if (!session || event.round % session.config.evalEvery !== 0 || event.round !== session.round) return;
    void this.evaluate(event.sessionId, event.round, 'periodic');
  }

  /** Evaluates the current model of the session; the result is reported to the engine, never thrown. */
  evaluate(sessionId: number, round: number, purpose: EvaluationPurpose): Promise<void> {
    // The copy is taken now, so the result belongs to this round's model even if evaluations queue up.
    let model: { modelVersion: number; params: Float32Array } | null = null;
    try {
      model = this.deps.model.paramsCopy(sessionId);
    } catch {
      model = null;
    }
    const run = this.chain.then(async () => {
      const result = await this.run(sessionId, round, model);
      this.deps.report(sessionId, purpose, result);
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async run(sessionId: number, round: number, model: { modelVersion: number; params: Float32Array } | null): Promise<EvaluationResult> {
    try {
      const evaluator = this.evaluatorSession === sessionId ? await this.evaluatorNow() : null;
      if (!evaluator || !model) return { ok: false, round, message: model ? 'no evaluator for this session' : 'no model loaded for this session' };
      // The model was copied once when this evaluation was asked for (paramsCopy); that copy moves to the worker.
      const result = await evaluator.evaluate(model.params, { transfer: true });
      return { ok: true, round, modelVersion: model.modelVersion, loss: result.loss, accuracy: result.accuracy };
    } catch (error) {
      return { ok: false, round, message: error instanceof Error ? error.message : String(error) };
    }
  }

  idle(): Promise<void> {
    return this.chain.then(() => undefined);
  }
}
