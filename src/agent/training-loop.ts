// One round on the agent: the latest model frame plus an assignment -> train on the assigned shard of the
// epoch permutation -> one gradient frame out. The gradient is summed straight into the outgoing frame's
// body (allocated once per round) and the header is sealed in place: no intermediate array, no copy at
// encode time. Rounds run one at a time, in the order assigned; a cancel stops a round between micro-batches.
import type { Dataset } from '../ml/datasets';
import { allocateFrame, FrameKind, sealFrame, type FrameFields } from '../protocol/frame';
import type { Assignment } from '../protocol/messages';
import { epochPermutation } from '../protocol/permutation';
import type { ModelFrame } from './inbound';
import { Lookahead, lookaheadKey } from './lookahead';
import { OuterEstimate } from './outer-estimate';
import { runLocalSteps, UpdateEncoder, type LocalStepsResult } from './local-steps';
import type { ProgressMeter } from './progress';
import { corruptUpdate, sendDelayMs, slowdownMs, type Simulation } from './simulation';

/** The parts of a prepared session (session.ts) a round uses; narrow so a test can supply fakes. */
export interface TrainingSession {
  session: { sessionId: number; seed: number };
  dataset: Pick<Dataset, 'trainSize' | 'inputShape' | 'fillTrainBatch'>;
  spec: { paramCount: number };
  trainer: {
    setParams(flat: Float32Array): void;
    accumulateGradient(x: Float32Array, y: Int32Array, count: number, into: Float32Array, weight: number, microBatch: number): number;
  };
}

export interface UpdateLink {
  readonly nodeId: number | null;
  sendFrame(bytes: Uint8Array): boolean;
}

export interface TrainingLoopOptions {
  session: () => TrainingSession | null;
  link: UpdateLink;
  progress: Pick<ProgressMeter, 'recordRound'>;
  log: (line: string) => void;
  /** Told when a round starts (its number) and ends (null); a training thread forwards it to the heartbeats. */
  onActive?: (round: number | null) => void;
  /** Largest micro-batch per forward/backward pass; the loop yields to the event loop between them. */
  microBatch?: number;
  now?: () => number;
  /** Simulated slowness, distance or dishonesty (simulation.ts); absent: an honest agent at full speed. */
  simulate?: Simulation;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class TrainingLoop {
  private model: { sessionId: number; version: number; values: Float32Array } | null = null;
  private active: number | null = null;
  /** Assignments are numbered as they arrive; a cancel applies to its round's assignments received before it. */
  private received = 0;
  private cancelled: { round: number; upTo: number } | null = null;
  private permutation: { seed: number; epoch: number; n: number; perm: Uint32Array } | null = null;
  private work: Promise<void> = Promise.resolve();
  private speed = 0;
  private readonly now: () => number;
  private readonly encoder = new UpdateEncoder();
  /** Overlap: the next round's shard, training ahead of its model (lookahead.ts). */
  private lookahead: Lookahead | null = null;
  /** Overlap: the coordinator's outer momentum, tracked from the models, to predict the next (outer-estimate.ts). */
  private outer: OuterEstimate | null = null;

  constructor(private readonly options: TrainingLoopOptions) {
    this.now = options.now ?? (() => performance.now());
  }

  /** The round being trained (for heartbeats), null between rounds. */
  get currentRound(): number | null {
    return this.active;
  }

  /** Recent training speed (samples/s, smoothed); seeded by the calibration at start. */
  get samplesPerSecond(): number {
    return this.speed;
  }

  set samplesPerSecond(value: number) {
    this.speed = value;
  }

  onModelFrame(frame: ModelFrame): void {
    this.model = { sessionId: frame.header.sessionId, version: frame.header.modelVersion, values: frame.values };
    if (this.outer) this.outer.observe(frame.header.sessionId, frame.header.modelVersion, frame.values);
  }

  assign(assignment: Assignment): void {
    const seq = ++this.received;
    this.work = this.work
      .then(() => this.train(assignment, seq))
      .catch((error) => this.options.log(`training failed: ${error instanceof Error ? error.stack : String(error)}`));
  }

  cancel(round: number): void {
    this.cancelled = { round, upTo: this.received };
  }

  /** Resolves when every round assigned so far has finished (or was skipped). */
  idle(): Promise<void> {
    return this.work;
  }

  private isCancelled(a: Assignment, seq: number): boolean {
    return this.cancelled !== null && this.cancelled.round === a.round && seq <= this.cancelled.upTo;
  }

  private async train(a: Assignment, seq: number): Promise<void> {
    // A head start on this very shard is adopted below; any other is abandoned before this round uses the trainer.
    const ahead = this.lookahead;
    this.lookahead = null;
    const adopt = ahead?.matches(a) ? ahead : null;
    if (ahead && !adopt) await ahead.abandon();
    try {
      await this.trainChecked(a, seq, adopt);
    } finally {
      // Not adopted after all (the round was cancelled or could not be trained): stop it.
      if (adopt && !adopt.adopted) await adopt.abandon();
    }
  }

  private async trainChecked(a: Assignment, seq: number, ahead: Lookahead | null): Promise<void> {
    if (this.isCancelled(a, seq)) return;
    const prepared = this.options.session();
    if (!prepared || prepared.session.sessionId !== a.sessionId) {
      this.options.log(`assignment for session ${a.sessionId} but prepared for ${prepared?.session.sessionId ?? 'none'}; skipped`);
      return;
    }
    const model = this.model;
    if (!model || model.version !== a.modelVersion || model.sessionId !== a.sessionId) {
      const holding = model ? `version ${model.version} of session ${model.sessionId}` : 'none';
      this.options.log(`assignment for model version ${a.modelVersion} of session ${a.sessionId} but holding ${holding}; skipped`);
      return;
    }
    const { dataset, spec } = prepared;
    if (model.values.length !== spec.paramCount) {
      this.options.log(`model frame has ${model.values.length} parameters, the session's model ${spec.paramCount}; round ${a.round} skipped`);
      return;
    }
    const indices = this.shardIndices(prepared.session.seed, a, dataset.trainSize);
    if (indices.length === 0) {
      this.options.log(`round ${a.round}: shard [${a.shardStart}, +${a.shardCount}) is empty for ${dataset.trainSize} training samples; skipped`);
      return;
    }
    this.active = a.round;
    this.options.onActive?.(a.round);
    try {
      await this.run(a, seq, prepared, model.values, indices, ahead);
    } finally {
      this.active = null;
      this.options.onActive?.(null);
    }
  }

  private async run(a: Assignment, seq: number, prepared: TrainingSession, params: Float32Array, indices: Uint32Array, ahead: Lookahead | null): Promise<void> {
    if (a.localSteps !== undefined && a.innerOptimizer) return this.runLocal(a, seq, prepared, params, indices, ahead);
    const { dataset, trainer, spec } = prepared;
    const startedAt = this.now();
    let computeMs = 0;
    let t = this.now();
    trainer.setParams(params);
    computeMs += this.now() - t;
    // Micro-batches bound how long a cancel or a newer model waits (128 MLP samples take ~20 ms on one wasm core;
    // smaller ones cost throughput, ~10% at 64). Heartbeats do not wait on them: this loop runs in the agent's
    // training thread, and the link lives on the main thread.
    const microBatch = Math.max(1, this.options.microBatch ?? 128);
    const inputSize = dataset.inputShape.reduce((p, d) => p * d, 1);
    const x = new Float32Array(Math.min(microBatch, indices.length) * inputSize);
    const y = new Int32Array(Math.min(microBatch, indices.length));
    // The frame this round's update goes out in; the trainer sums into its body, weighted by each share.
    const { bytes, body } = allocateFrame(spec.paramCount);
    let lossSum = 0;
    for (let offset = 0; offset < indices.length; offset += microBatch) {
      if (this.isCancelled(a, seq)) return;
      const count = Math.min(microBatch, indices.length - offset);
      t = this.now();
      dataset.fillTrainBatch(indices.subarray(offset, offset + count), x, y);
      lossSum += trainer.accumulateGradient(x, y, count, body, count / indices.length, microBatch) * count;
      const stepMs = this.now() - t;
      computeMs += stepMs;
      const idle = slowdownMs(stepMs, this.options.simulate?.speed);
      if (idle > 0) await sleep(idle);
      // Let control messages (cancel, the next model and assignment) through between micro-batches.
      if (offset + count < indices.length) await new Promise((resolve) => setImmediate(resolve));
    }
    if (this.isCancelled(a, seq) || this.options.link.nodeId !== a.nodeId) return;
    const loss = lossSum / indices.length;
    if (this.options.simulate?.byzantine) corruptUpdate(body, this.options.simulate.byzantine);
    const fields = this.fields(a, FrameKind.Gradient, indices.length, loss);
    // float32 with nothing left over from a lossy codec: seal the frame the gradient was summed into (no copy).
    const frame = (a.codec ?? 'float32') === 'float32' && !this.encoder.hasResidual(a.sessionId) ? sealFrame(bytes, fields) : this.encoder.encode(a, fields, body);
    if (!(await this.simulatedSendDelay(a, seq, frame.byteLength))) return;
    this.finish(a, frame, startedAt, computeMs, indices.length, loss);
  }

  /** --simulate-upload: waits as a thin link would take to send the frame; false when the round ended meanwhile. */
  private async simulatedSendDelay(a: Assignment, seq: number, bytes: number): Promise<boolean> {
    const delay = sendDelayMs(bytes, this.options.simulate);
    if (delay <= 0) return true;
    await sleep(delay);
    return !this.isCancelled(a, seq) && this.options.link.nodeId === a.nodeId;
  }

  /** Local steps: H inner steps from the received model, then start - end weights in the assignment's codec. */
  private async runLocal(a: Assignment, seq: number, prepared: TrainingSession, params: Float32Array, indices: Uint32Array, ahead: Lookahead | null): Promise<void> {
    // Overlap: the run that started on this shard when the last update went out re-bases onto this model and
    // finishes; its round began when it did.
    const startedAt = ahead?.startedAt ?? this.now();
    const result = ahead
      ? await ahead.adopt(params, () => this.isCancelled(a, seq))
      : await runLocalSteps({
          prepared,
          start: params,
          indices,
          steps: a.localSteps!,
          stepBatch: a.batchSize,
          optimizer: this.encoder.optimizerFor(a.sessionId, a.innerOptimizer!, prepared.spec.paramCount),
          microBatch: Math.max(1, this.options.microBatch ?? 128),
          now: this.now,
          cancelled: () => this.isCancelled(a, seq),
          keepEnd: a.next !== undefined,
        });
    if (!result || this.isCancelled(a, seq) || this.options.link.nodeId !== a.nodeId) return;
    if (this.options.simulate?.byzantine) corruptUpdate(result.pseudoGradient, this.options.simulate.byzantine);
    const t = this.now();
    const frame = this.encoder.encode(a, this.fields(a, FrameKind.PseudoGradient, indices.length, result.loss), result.pseudoGradient);
    // Overlap: where the next round starts (eager: the model predicted from the update exactly as the coordinator
    // will decode it, so a lossy codec's rounding does not put the head start off the real next model).
    const headStart = result.end ? this.aheadStart(a, params, this.encoder.sent(a, result.pseudoGradient), result.end) : null;
    // Encoding is work this node does for the round (top-k's selection, int8's scales), so it counts as compute.
    const encodeMs = this.now() - t;
    if (!(await this.simulatedSendDelay(a, seq, frame.byteLength))) return;
    this.finish(a, frame, startedAt, result.computeMs + encodeMs, indices.length, result.loss);
    // Overlap: straight on to the next shard while this update travels and the next model comes back.
    if (headStart) this.startLookahead(a, prepared, headStart);
  }

  /** The next round's head start: the predicted next model when the session's outer optimizer is known, else `end`. */
  private aheadStart(a: Assignment, model: Float32Array, update: Float32Array, end: Float32Array): Float32Array {
    const outer = a.next?.outer;
    if (!outer) return end;
    if (!this.outer) {
      this.outer = new OuterEstimate();
      this.outer.observe(a.sessionId, a.modelVersion, model);
    }
    // `end` is no longer needed: the prediction is written over it.
    return this.outer.predict(outer, model, update, end);
  }

  /** Overlap: trains the shard reserved for this node's next round from `end`, ahead of the next model. */
  private startLookahead(a: Assignment, prepared: TrainingSession, end: Float32Array): void {
    const key = lookaheadKey(a);
    if (!key) return;
    const indices = this.shardIndices(prepared.session.seed, key, prepared.dataset.trainSize).slice();
    if (indices.length === 0) return;
    const optimizer = this.encoder.optimizerFor(a.sessionId, a.innerOptimizer!, prepared.spec.paramCount);
    this.lookahead = new Lookahead(key, this.now(), (hooks) =>
      runLocalSteps({
        prepared,
        start: end,
        indices,
        steps: key.localSteps,
        stepBatch: key.batchSize,
        optimizer,
        microBatch: Math.max(1, this.options.microBatch ?? 128),
        now: this.now,
        cancelled: hooks.cancelled,
        rebase: hooks.rebase,
        keepEnd: true,
      }).catch((error): LocalStepsResult | null => {
        this.options.log(`training ahead failed: ${error instanceof Error ? error.stack : String(error)}`);
        return null;
      }),
    );
  }

  private fields(a: Assignment, kind: FrameKind, samples: number, loss: number): FrameFields {
    return { kind, sessionId: a.sessionId, round: a.round, nodeId: a.nodeId, attempt: a.attempt, modelVersion: a.modelVersion, sampleCount: samples, trainLoss: loss };
  }

  private finish(a: Assignment, frame: Uint8Array, startedAt: number, computeMs: number, samples: number, loss: number): void {
    if (!this.options.link.sendFrame(frame)) this.options.log(`update for round ${a.round} not sent: not connected`);
    const endedAt = this.now();
    this.options.progress.recordRound({ startedAt, endedAt, computeMs, samples, loss });
    const seconds = (endedAt - startedAt) / 1000;
    if (seconds > 0) this.speed = 0.8 * (this.speed || samples / seconds) + 0.2 * (samples / seconds);
  }

  private shardIndices(seed: number, a: Pick<Assignment, 'epoch' | 'shardStart' | 'shardCount'>, trainSize: number): Uint32Array {
    const cached = this.permutation;
    if (!cached || cached.seed !== seed || cached.epoch !== a.epoch || cached.n !== trainSize) {
      this.permutation = { seed, epoch: a.epoch, n: trainSize, perm: epochPermutation(seed, a.epoch, trainSize) };
    }
    return this.permutation!.perm.subarray(Math.min(a.shardStart, trainSize), Math.min(trainSize, a.shardStart + a.shardCount));
  }
}
