// The model the coordinator trains: parameters and optimizer state of the active session, and the aggregates
// of rounds waiting for their commit. The engine refers to them by session and round; only the runner, the
// checkpointer and the evaluator touch the arrays.
//
// With optimizer kernels (runtime.ts passes the WebAssembly ones when the aggregator runs its SIMD backend), the
// live parameters and optimizer state lie in the kernel's memory and each round's step runs there; `model`
// hands out those very arrays. The kernel gives core/optimizer.ts's bits exactly, so recovery's replay through
// the reference and the live step agree, and a checkpoint is the same bytes whichever of the two produced it.
import { allocateFrame, FrameKind, sealFrame, type FrameBuffer } from '../../protocol/frame';
import type { OptimizerState } from '../core/optimizer';
import type { ExportedModel, ModelCatalog, OptimizerKernels, ResidentModel } from '../core/ports';
import { strategyFor, type Strategy } from '../core/engine/strategy';
import type { ModelName, SessionConfig } from '../core/types';

export interface LoadedModel {
  sessionId: number;
  modelVersion: number;
  params: Float32Array;
  optimizer: OptimizerState;
}

export class ModelStore {
  private current: (LoadedModel & { strategy: Strategy; resident: ResidentModel | null }) | null = null;
  private readonly pending = new Map<number, Float32Array>();
  /** The last model frame, reused while the model has not changed (a retried round sends the same bytes). */
  private frame: { key: string; bytes: Uint8Array } | null = null;
  /** The next model frame's buffer, allocated and its pages touched ahead of the round close (prepareFrame). */
  private spare: FrameBuffer | null = null;
  /** The model version whose parameters the spare's body already holds (copied from a staged step), if any. */
  private spareHolds: number | null = null;
  /** The round whose step stage() started, and when it is done (staged into the second bank, or failed). */
  private staging: { round: number; done: Promise<void> } | null = null;

  constructor(
    private readonly catalog: ModelCatalog,
    /** Where the step runs when it can (a SIMD kernel); absent: core/optimizer.ts on this thread. */
    private readonly kernels: OptimizerKernels | null = null,
  ) {}

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

  /** Takes over a model (fresh, or rebuilt from a checkpoint and the journal); copied into the kernel's memory when it runs the step. */
  load(model: LoadedModel, config: SessionConfig): void {
    const strategy = strategyFor(config);
    const resident = this.residentFor(strategy, model);
    this.current = resident
      ? {
          sessionId: model.sessionId,
          modelVersion: model.modelVersion,
          // Read through: a published staged step switches the resident model's banks, and with them these arrays.
          get params() {
            return resident.params;
          },
          optimizer: resident.state,
          strategy,
          resident,
        }
      : { ...model, strategy, resident: null };
    this.pending.clear();
    this.frame = null;
    this.spare = null;
    this.spareHolds = null;
    this.staging = null;
  }

  /** Which engine steps the loaded model: 'kernel' (resident in the SIMD kernel's memory) or 'js' (core/optimizer.ts). */
  get engine(): 'kernel' | 'js' | null {
    return this.current ? (this.current.resident ? 'kernel' : 'js') : null;
  }

  /**
   * The model copied into the kernel's memory, or null to keep it in JavaScript: no kernels, a rule the kernel
   * does not run, no memory for it, or optimizer state of another shape than the rule's (left to the reference).
   */
  private residentFor(strategy: Strategy, model: LoadedModel): ResidentModel | null {
    let resident: ResidentModel | null = null;
    try {
      resident = this.kernels?.create(strategy.outerStep, model.params.length) ?? null;
    } catch {
      // The kernel's memory could not be had (a large model on a tight heap): the reference needs no more.
      return null;
    }
    if (!resident) return null;
    const slots = model.optimizer.slots;
    if (slots.length !== resident.state.slots.length || slots.some((s) => s.length !== model.params.length)) return null;
    resident.params.set(model.params);
    slots.forEach((s, i) => resident.state.slots[i].set(s));
    resident.state.step = model.optimizer.step;
    return resident;
  }

  get model(): LoadedModel | null {
    return this.current;
  }

  /**
   * One encoding of the model for everyone in a round: the same bytes go to each socket. A fresh buffer per
   * model version (a slow socket may still be sending the last one; prepareFrame has it ready), the parameters
   * copied into it once. Where the model is resident in the kernel, its checksum comes from the step that wrote
   * the parameters (or one wasm pass before the first step); else checksum32 reads the copy.
   */
  modelFrame(sessionId: number, round: number, modelVersion: number): Uint8Array {
    const model = this.require(sessionId);
    if (model.modelVersion !== modelVersion) throw new Error(`model of session ${sessionId} is at version ${model.modelVersion}, not ${modelVersion}`);
    const key = `${sessionId}/${round}/${modelVersion}`;
    if (this.frame?.key !== key) {
      const n = model.params.length;
      // The spare may already hold a staged next version: used for that version only (a frame of the current one,
      // asked while the commit runs, gets a buffer of its own).
      const spare = this.spare?.body.length === n && (this.spareHolds === null || this.spareHolds === modelVersion) ? this.spare : null;
      const { bytes, body } = spare ?? allocateFrame(n);
      if (!spare || this.spareHolds !== modelVersion) body.set(model.params);
      if (spare) {
        this.spare = null;
        this.spareHolds = null;
      }
      const fields = { kind: FrameKind.Model, sessionId, round, nodeId: 0, attempt: 0, modelVersion, sampleCount: 0, trainLoss: Number.NaN };
      this.frame = { key, bytes: sealFrame(bytes, fields, model.resident?.checksum()) };
    }
    return this.frame.bytes;
  }

  /**
   * Allocates the next model frame's buffer and touches its pages now, so modelFrame writes into mapped memory:
   * a fresh 4 MB buffer's page faults cost more than the copy into it (about 2 ms against 0.4 ms at 1M
   * parameters, measured here). The runner calls it while the round's journal write runs, off the critical path.
   * Never throws.
   */
  prepareFrame(sessionId: number): void {
    const n = this.current?.sessionId === sessionId ? this.current.params.length : -1;
    if (n < 0 || this.spare?.body.length === n) return;
    try {
      const spare = allocateFrame(n);
      for (let i = 0; i < spare.bytes.length; i += 4096) spare.bytes[i] = 0;
      this.spare = spare;
      this.spareHolds = null;
    } catch {
      // Only a head start: without it modelFrame allocates, as it always did. Never fails the caller's round.
      this.spare = null;
    }
  }

  /**
   * Computes a round's step ahead of its commit, out of place (on an aggregator worker where the kernels have one),
   * and copies the result into the next model frame's buffer: the runner starts it as the round's commit begins,
   * so the round's close waits for whichever of the two is longer, not their sum. Nothing is published: the live
   * model, its version and what checkpoints and evaluations read stay the old ones until apply() (after the
   * commit) switches banks; discard() forgets it. A model that cannot stage (JS reference, no second bank) steps
   * in apply() as before. Resolves when done; never rejects: it is only a head start.
   */
  stage(sessionId: number, round: number): Promise<void> {
    const model = this.current;
    const aggregate = this.pending.get(round);
    if (!model?.resident?.canStage || model.sessionId !== sessionId || !aggregate) return Promise.resolve();
    if (this.staging?.round === round) return this.staging.done;
    const resident = model.resident;
    const version = model.modelVersion + 1;
    let started: Promise<void>;
    try {
      started = resident.stage(aggregate);
    } catch (error) {
      started = Promise.reject(error);
    }
    const done = started.then(
      () => {
        if (this.staging?.done !== done) return; // dropped or superseded meanwhile
        const staged = resident.stagedParams;
        this.prepareFrame(sessionId);
        if (staged && this.spare?.body.length === staged.length) {
          this.spare.body.set(staged);
          this.spareHolds = version;
        }
      },
      () => {
        // Not staged (a crashed worker, dropped meanwhile): apply() steps in place after the commit, as before.
        if (this.staging?.done === done) this.staging = null;
      },
    );
    this.staging = { round, done };
    return done;
  }

  /** Resolves once the round's staged step (if any) has finished or failed: the runner waits for it before apply. */
  whenStaged(sessionId: number, round: number): Promise<void> {
    return this.current?.sessionId === sessionId && this.staging?.round === round ? this.staging.done : Promise.resolve();
  }

  /**
   * Where a round's mean may be written: the resident model's gradient buffer (the step reads it there, with no
   * copy, and its pages are mapped: a fresh array's page faults cost several times the copy), unless an
   * aggregate held for a round still refers to it. Undefined: let the aggregation allocate, as it always did.
   */
  aggregateTarget(sessionId: number): Float32Array | undefined {
    const resident = this.current?.sessionId === sessionId ? this.current.resident : null;
    if (!resident?.canStage || !resident.grad) return undefined;
    for (const held of this.pending.values()) if (held === resident.grad) return undefined;
    return resident.grad;
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
    const staged = this.staging?.round === round && model.resident?.stagedParams;
    if (staged) model.resident!.commitStaged();
    else if (model.resident) model.resident.apply(aggregate); // drops a staged step still running, if any
    else model.strategy.applyAggregate(model.optimizer, model.params, aggregate);
    this.staging = null;
    model.modelVersion += 1;
    this.frame = null;
  }

  discard(round: number): void {
    this.pending.delete(round);
    if (this.staging?.round !== round) return;
    this.current?.resident?.dropStaged();
    this.staging = null;
    this.spareHolds = null;
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
