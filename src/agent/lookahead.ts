// Overlap on the agent: as soon as a round's update is sent, train the shard the coordinator reserved for this node's
// next round (the assignment's `next`), from this round's end weights, instead of idling while the update travels,
// the round commits and the next model comes back. When the next assignment arrives and names that shard, the run
// is adopted: it re-bases onto the new model (keeping the steps already taken as progress), finishes the remaining
// steps and sends model - end weights for that assignment, so the coordinator sees an ordinary update for the
// current model version. Any other assignment abandons it (the coordinator gave the shard to someone else, or a
// restarted coordinator knows nothing of it): a head start is only ever a hint, never credit.
import type { Assignment } from '../protocol/messages';
import type { LocalStepsResult } from './local-steps';

/** What a lookahead was started for: the next assignment must match it to adopt the run. */
export interface LookaheadKey {
  sessionId: number;
  epoch: number;
  shardStart: number;
  shardCount: number;
  localSteps: number;
  batchSize: number;
  /** The inner optimizer setting (its fields, in a fixed order). */
  optimizer: string;
}

export function lookaheadKey(a: Assignment): LookaheadKey | null {
  if (!a.next || a.localSteps === undefined || !a.innerOptimizer) return null;
  return { sessionId: a.sessionId, ...a.next, localSteps: a.localSteps, batchSize: a.batchSize, optimizer: optimizerKey(a.innerOptimizer) };
}

function optimizerKey(o: NonNullable<Assignment['innerOptimizer']>): string {
  return [o.name, o.learningRate, o.momentum, o.beta1, o.beta2, o.epsilon].join('/');
}

export interface LookaheadHooks {
  cancelled(): boolean;
  rebase: { poll(): Float32Array | null; wait(): Promise<Float32Array | null> };
}

export class Lookahead {
  readonly done: Promise<LocalStepsResult | null>;
  private model: Float32Array | null = null;
  /** Claimed by its assignment (adopt was called). */
  adopted = false;
  private abandoned = false;
  private adoptedCancelled: (() => boolean) | null = null;
  private wake: ((model: Float32Array | null) => void) | null = null;

  constructor(
    readonly key: LookaheadKey,
    /** When its work started (the round's start, for the agent's utilisation). */
    readonly startedAt: number,
    run: (hooks: LookaheadHooks) => Promise<LocalStepsResult | null>,
  ) {
    this.done = run({
      cancelled: () => this.abandoned || (this.adoptedCancelled?.() ?? false),
      rebase: {
        poll: () => this.model,
        wait: () => (this.model || this.abandoned ? Promise.resolve(this.model) : new Promise((resolve) => (this.wake = resolve))),
      },
    });
  }

  /** Whether this assignment is the one the run was started for. */
  matches(a: Assignment): boolean {
    const k = this.key;
    return (
      a.localSteps !== undefined &&
      !!a.innerOptimizer &&
      a.sessionId === k.sessionId &&
      a.epoch === k.epoch &&
      a.shardStart === k.shardStart &&
      a.shardCount === k.shardCount &&
      a.localSteps === k.localSteps &&
      a.batchSize === k.batchSize &&
      optimizerKey(a.innerOptimizer) === k.optimizer
    );
  }

  /** The assignment came: re-base onto its model and finish; `cancelled` is that assignment's own cancel. */
  adopt(model: Float32Array, cancelled: () => boolean): Promise<LocalStepsResult | null> {
    this.adopted = true;
    this.adoptedCancelled = cancelled;
    this.model = model;
    this.wake?.(model);
    this.wake = null;
    return this.done;
  }

  /** Not needed after all: stop at the next micro-batch and send nothing. */
  abandon(): Promise<unknown> {
    this.abandoned = true;
    this.wake?.(null);
    this.wake = null;
    return this.done;
  }
}
