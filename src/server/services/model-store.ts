// The model the coordinator trains: parameters and optimizer state of the active session, and the aggregates
// of rounds waiting for their commit. The engine refers to them by session and round; only the runner, the
// checkpointer and the evaluator touch the arrays.
import { encodeFrame, FrameKind } from '../../protocol/frame';
import type { OptimizerState } from '../core/optimizer';
import type { ExportedModel, ModelCatalog } from '../core/ports';
import { strategyFor, type Strategy } from '../core/engine/strategy';
import type { ModelName, SessionConfig } from '../core/types';

export interface LoadedModel {
  sessionId: number;
  modelVersion: number;
  params: Float32Array;
  optimizer: OptimizerState;
}

export class ModelStore {
  private current: (LoadedModel & { strategy: Strategy }) | null = null;
  private readonly pending = new Map<number, Float32Array>();
  /** The last model frame, reused while the model has not changed (a retried round sends the same bytes). */
  private frame: { key: string; bytes: Uint8Array } | null = null;

  constructor(private readonly catalog: ModelCatalog) {}

  paramCount(model: ModelName): number {
    return this.catalog.paramCount(model);
  }

  /**
   * Parameters a session started from a checkpoint begins with (config.initFrom), handed over by whoever read
   * the checkpoint before asking the engine to start (the control service, or recovery after a crash).
   */
  private readonly presets = new Map<string, Float32Array>();

  preset(from: { sessionId: number; round: number }, params: Float32Array): void {
    this.presets.clear(); // one start at a time; an earlier preset whose start failed is stale
    this.presets.set(`${from.sessionId}/${from.round}`, params);
  }

  /** A fresh model for a new session: the session's seed, or the checkpoint it starts from (with a fresh optimizer). */
  init(sessionId: number, config: SessionConfig): void {
    const strategy = strategyFor(config);
    const from = config.initFrom;
    const preset = from ? this.presets.get(`${from.sessionId}/${from.round}`) : undefined;
    if (from && !preset) throw new Error(`session ${sessionId} starts from session ${from.sessionId}'s checkpoint at round ${from.round}, which was not loaded`);
    if (preset && preset.length !== this.catalog.paramCount(config.model)) throw new Error(`the checkpoint holds ${preset.length} parameters, model ${config.model} has ${this.catalog.paramCount(config.model)}`);
    if (from) this.presets.clear();
    const params = preset ? preset.slice() : this.catalog.initialParams(config.model, config.seed);
    this.load({ sessionId, modelVersion: 0, params, optimizer: strategy.createOptimizerState(params.length) }, config);
  }

  /** Model files a user can download (TensorFlow.js layers format). */
  exportLayers(model: SessionConfig['model'], params: Float32Array, options: { weightsPath: string; metadata?: Record<string, unknown> }): ExportedModel {
    if (!this.catalog.exportLayers) throw new Error('this coordinator cannot export models');
    return this.catalog.exportLayers(model, params, options);
  }

  load(model: LoadedModel, config: SessionConfig): void {
    this.current = { ...model, strategy: strategyFor(config) };
    this.pending.clear();
    this.frame = null;
  }

  get model(): LoadedModel | null {
    return this.current;
  }

  /** One encoding of the model for everyone in a round: the same bytes go to each socket. */
  modelFrame(sessionId: number, round: number, modelVersion: number): Uint8Array {
    const model = this.require(sessionId);
    if (model.modelVersion !== modelVersion) throw new Error(`model of session ${sessionId} is at version ${model.modelVersion}, not ${modelVersion}`);
    const key = `${sessionId}/${round}/${modelVersion}`;
    if (this.frame?.key !== key) {
      const bytes = encodeFrame({ kind: FrameKind.Model, sessionId, round, nodeId: 0, attempt: 0, modelVersion, sampleCount: 0, trainLoss: Number.NaN }, model.params);
      this.frame = { key, bytes };
    }
    return this.frame.bytes;
  }

  holdAggregate(sessionId: number, round: number, aggregate: Float32Array): void {
    this.require(sessionId);
    this.pending.set(round, aggregate);
  }

  aggregateOf(sessionId: number, round: number): Float32Array | null {
    return this.current?.sessionId === sessionId ? this.pending.get(round) ?? null : null;
  }

  /** Applies a committed round's aggregate with the session's outer optimizer. */
  apply(sessionId: number, round: number): void {
    const model = this.require(sessionId);
    const aggregate = this.pending.get(round);
    if (!aggregate) throw new Error(`round ${round} of session ${sessionId} has no aggregate to apply`);
    this.pending.delete(round);
    model.strategy.applyAggregate(model.optimizer, model.params, aggregate);
    model.modelVersion += 1;
    this.frame = null;
  }

  discard(round: number): void {
    this.pending.delete(round);
  }

  /** The parameters alone, copied once (what an evaluation needs). */
  paramsCopy(sessionId: number): { modelVersion: number; params: Float32Array } {
    const model = this.require(sessionId);
    return { modelVersion: model.modelVersion, params: model.params.slice() };
  }

  /** A copy the checkpointer can take away while training goes on. */
  snapshot(sessionId: number): LoadedModel {
    const model = this.require(sessionId);
    return { sessionId, modelVersion: model.modelVersion, params: model.params.slice(), optimizer: { step: model.optimizer.step, slots: model.optimizer.slots.map((s) => s.slice()) } };
  }

  private require(sessionId: number) {
    if (!this.current || this.current.sessionId !== sessionId) throw new Error(`no model loaded for session ${sessionId}`);
    return this.current;
  }
}
