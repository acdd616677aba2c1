// The outer optimizer's step as one fused WebAssembly SIMD pass (src/workers/kernels/optimizer.wat) over the
// parameters and optimizer state kept resident in a memory of their own: no copy in or out per step, only the
// aggregate is copied in (or written in place through `grad`). The model store keeps the live model here
// (OptimizerKernels in core/ports.ts, built by runtime.ts when the aggregator pool runs its wasm SIMD backend).
//
// The kernel computes in float64 and rounds to float32 where core/optimizer.ts does, so it gives the reference's
// bits exactly: recovery may replay the journal through the reference onto these arrays and reach the very model
// the process had (tests/unit/optimizer-kernel.test.ts holds both to equality).
//
// The memory is not shared and never grows: it is sized for one model at creation, so the views handed out
// (params, slots, grad) stay valid for the life of the object, and it is freed with the object.
import { readFileSync } from 'node:fs';
import { foldChecksum } from '../../../protocol/frame';
import type { OptimizerState, OuterStepRule } from '../../core/optimizer';
import type { OptimizerKernels, ResidentModel } from '../../core/ports';
import type { OptimizerStepJob } from './aggregator-pool-types';

const OPTIMIZER_WASM_URL = new URL('../../../workers/kernels/optimizer.wasm', import.meta.url);
const PAGE = 65536;
/** Bytes before the first array: the checksum lanes of main-thread kernel calls at 0, of a staged step at 16. */
const HEADER_BYTES = 64;
const MAIN_LANES = 0;
const WORKER_LANES = 16;
let optimizerModule: WebAssembly.Module | null = null;

interface OptimizerKernel {
  adam(p: number, g: number, m: number, v: number, n: number, step: number, eps: number, b1: number, b2: number, c1: number, c2: number, ck: number, d: number): void;
  sgd(p: number, g: number, b: number, n: number, lr: number, mu: number, nesterov: number, ck: number, d: number): void;
  checksum(p: number, n: number, out: number): void;
}

/** Runs one kernel call on another thread (the aggregator pool's runOptimizerStep), resolving when it is done. */
export type OptimizerStepRunner = (job: OptimizerStepJob) => Promise<void>;

/** Names each resident model's memory for the workers, which keep the kernel instantiated on the last one. */
let nextModelId = 1;

export interface ResidentOptimizerOptions {
  /**
   * A second bank of parameters and state, so stage() can compute the next model out of place while the current
   * one stays readable (and the round's commit is made durable); commitStaged() then publishes it by switching
   * banks. Costs (1 + slots) x 4 bytes per parameter more; without it stage() is unavailable and apply() steps
   * in place.
   */
  staging?: boolean;
  /**
   * Where a staged step runs: another thread (the memory is then shared with it), so the main thread goes on with
   * the commit's journal write meanwhile. Without it stage() runs on the calling thread.
   */
  runner?: OptimizerStepRunner;
  /** Smaller models stage on the calling thread even with a runner (see WORKER_STEP_MIN_PARAMS). */
  workerMinParams?: number;
}

/**
 * Below this many parameters a staged step runs on the calling thread: the step is then about a millisecond or
 * less, no more than handing it to another thread costs on a loaded machine (the worker must be scheduled, then
 * the reply; on 2 busy cores that wait is several milliseconds), so a small model's rounds would only get slower.
 * Every built-in model is under it (the largest, mlp2nn, has 199,210). At 1M parameters Adam takes 3-12 ms here,
 * far more than the handoff; this used to be 2^20, just above 1M, which kept a 1M model's step on the main thread
 * before its journal write (bench/ingest.ts: the commit's part 21.7 ms staged and in sequence alike).
 */
export const WORKER_STEP_MIN_PARAMS = 1 << 18;

export class ResidentOptimizer implements ResidentModel {
  /** Where the step reads the aggregate from: write it here, or pass any array to apply() (one copy). */
  readonly grad: Float32Array;
  /**
   * SGD: [momentum buffer]; Adam: [m, v], as core/optimizer.ts's OptimizerState.slots; step: steps applied. The
   * object is the same for the model's life; its slots are the live bank's views (replaced when banks switch).
   */
  readonly state: OptimizerState;
  readonly canStage: boolean;
  private readonly kernel: OptimizerKernel;
  private readonly gradOffset: number;
  /** Byte offsets of each bank's arrays: [params, ...slots]. */
  private readonly banks: number[][];
  private readonly views: Float32Array[][];
  private live = 0;
  /** The other bank holds a step (stage()) not yet published, with the checksum32 the step computed. */
  private staged: { checksum: number } | null = null;
  /** The staged step still running on the runner's thread; a later stage() waits for it (both write the same bank). */
  private staging: Promise<unknown> = Promise.resolve();
  /** Counts stage() calls: a step dropped while it ran must not become staged when it finishes. */
  private generation = 0;
  private readonly memory: WebAssembly.Memory;
  private readonly modelId = nextModelId++;
  private readonly runner: OptimizerStepRunner | null;
  private readonly lanes: Int32Array;
  /** checksum32 of params as the last step left them (the step computes it); null before the first step. */
  private stepChecksum: number | null = null;

  constructor(
    readonly rule: OuterStepRule,
    readonly paramCount: number,
    options: ResidentOptimizerOptions = {},
  ) {
    const slotCount = rule.name === 'adam' ? 2 : 1;
    const bytes = Math.ceil((paramCount * 4) / 64) * 64;
    const bankCount = options.staging ? 2 : 1;
    const arrays = 1 + bankCount * (1 + slotCount);
    const pages = Math.ceil((HEADER_BYTES + arrays * bytes) / PAGE);
    const onWorker = options.staging && paramCount >= (options.workerMinParams ?? WORKER_STEP_MIN_PARAMS);
    this.runner = onWorker ? (options.runner ?? null) : null;
    // Shared, so an aggregator worker can step it (the kernel imports a shared memory); it never grows.
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    this.memory = memory;
    optimizerModule ??= new WebAssembly.Module(new Uint8Array(readFileSync(OPTIMIZER_WASM_URL)));
    this.kernel = new WebAssembly.Instance(optimizerModule, { env: { memory } }).exports as unknown as OptimizerKernel;
    const at = (i: number) => HEADER_BYTES + i * bytes;
    this.gradOffset = at(0);
    this.banks = Array.from({ length: bankCount }, (_, b) => Array.from({ length: 1 + slotCount }, (_, i) => at(1 + b * (1 + slotCount) + i)));
    this.views = this.banks.map((offsets) => offsets.map((offset) => new Float32Array(memory.buffer, offset, paramCount)));
    this.grad = new Float32Array(memory.buffer, this.gradOffset, paramCount);
    this.state = { slots: this.views[0].slice(1), step: 0 };
    this.canStage = bankCount === 2;
    this.lanes = new Int32Array(memory.buffer, 0, 8);
  }

  /** The live parameters (the published bank). Read it again after commitStaged(): the array changes. */
  get params(): Float32Array {
    return this.views[this.live][0];
  }

  get slots(): Float32Array[] {
    return this.state.slots;
  }

  get step(): number {
    return this.state.step;
  }

  /** One step: params -= update(grad), in place, as core/optimizer.ts's applyOptimizerStep / applyNesterovStep. */
  apply(grad: Float32Array = this.grad): void {
    this.dropStaged();
    const call = this.call(grad, this.live, MAIN_LANES);
    this.invoke(call);
    this.state.step += 1;
    this.stepChecksum = this.foldLanes(MAIN_LANES);
  }

  /**
   * The same step computed into the other bank, on the runner's thread when there is one: the live parameters and
   * state stay as they are (readable, checkpointable) until commitStaged() publishes the result, or dropStaged()
   * forgets it. Bit for bit apply(). Resolves once the step is staged; rejects (nothing staged) when it could not
   * run. `grad` is read (copied into the kernel's gradient buffer unless it is that buffer) once any earlier
   * staged step has finished, so the caller keeps it unchanged until this settles.
   */
  stage(grad: Float32Array = this.grad): Promise<void> {
    if (!this.canStage) return Promise.reject(new Error('this resident model has one bank: create it with { staging: true } to stage a step'));
    this.staged = null;
    const generation = ++this.generation;
    const runner = this.runner;
    if (!runner) {
      this.invoke(this.call(grad, 1 - this.live, WORKER_LANES));
      this.staged = { checksum: this.foldLanes(WORKER_LANES) };
      return Promise.resolve();
    }
    // A step still running writes the same bank, and reads `grad`: the next one starts after it.
    const run = this.staging.then(() => {
      if (generation !== this.generation) throw new Error('a later step was staged or applied');
      const { kernel, args } = this.call(grad, 1 - this.live, WORKER_LANES);
      return runner({ model: this.modelId, memory: this.memory, module: optimizerModule!, kernel, args });
    });
    this.staging = run.catch(() => undefined);
    return run.then(() => {
      if (generation !== this.generation) throw new Error('the staged step was dropped while it ran');
      this.staged = { checksum: this.foldLanes(WORKER_LANES) };
    });
  }

  /** The staged model's parameters (the other bank), to copy into the next model frame before it is published. */
  get stagedParams(): Float32Array | null {
    return this.staged ? this.views[1 - this.live][0] : null;
  }

  /** checksum32 of the staged parameters (computed by the staged step), or null when nothing is staged. */
  get stagedChecksum(): number | null {
    return this.staged?.checksum ?? null;
  }

  /** Publishes the staged step: the other bank becomes the live model, as if apply() had run now. */
  commitStaged(): void {
    if (!this.staged) throw new Error('no staged step to commit');
    this.live = 1 - this.live;
    this.state.slots = this.views[this.live].slice(1);
    this.state.step += 1;
    this.stepChecksum = this.staged.checksum;
    this.staged = null;
    this.generation++;
  }

  /** Forgets a staged step (one still running finishes into the other bank, unread). */
  dropStaged(): void {
    this.staged = null;
    this.generation++;
  }

  /** The kernel call stepping bank `live` (its state at step + 1) into bank `into`, checksum lanes at `lanes`. */
  private call(grad: Float32Array, into: number, lanes: number): { kernel: 'adam' | 'sgd'; args: number[] } {
    if (grad.length !== this.paramCount) throw new Error(`gradient has ${grad.length} values, parameters ${this.paramCount}`);
    if (grad !== this.grad) this.grad.set(grad);
    const r = this.rule;
    const [p, s0, s1] = this.banks[this.live];
    const d = this.banks[into][0] - p;
    const g = this.gradOffset;
    const step = this.state.step + 1;
    if (r.name === 'sgd') return { kernel: 'sgd', args: [p, g, s0, this.paramCount, r.learningRate, r.momentum, r.nesterov ? 1 : 0, lanes, d] };
    // Bias correction folded into the step size, in float64, exactly as the reference computes it.
    const c1 = 1 - Math.pow(r.beta1, step);
    const c2 = 1 - Math.pow(r.beta2, step);
    return { kernel: 'adam', args: [p, g, s0, s1, this.paramCount, (r.learningRate * Math.sqrt(c2)) / c1, r.epsilon * Math.sqrt(c2), r.beta1, r.beta2, 1 - r.beta1, 1 - r.beta2, lanes, d] };
  }

  private invoke({ kernel, args }: { kernel: 'adam' | 'sgd'; args: number[] }): void {
    (this.kernel[kernel] as (...a: number[]) => void)(...args);
  }

  /**
   * checksum32 of the parameters: the one the last step computed on its way (free: its multiply chains run
   * behind the step's divisions), or one pass over them before any step. Parameters are written by apply() only
   * once it has run (the model store's rule; recovery writes into a model before its first step).
   */
  checksum(): number {
    if (this.stepChecksum !== null) return this.stepChecksum;
    this.kernel.checksum(this.params.byteOffset, this.paramCount, MAIN_LANES);
    return this.foldLanes(MAIN_LANES);
  }

  private foldLanes(at: number): number {
    const i = at / 4;
    return foldChecksum(this.lanes[i], this.lanes[i + 1], this.lanes[i + 2], this.lanes[i + 3], this.paramCount);
  }
}

/** The model store's kernels: every rule OuterStepRule names runs here. */
export const wasmOptimizerKernels: OptimizerKernels = createWasmOptimizerKernels();

/**
 * The model store's kernels, with staged steps run by `runner` (runtime.ts: the aggregator pool's workers) or on
 * the calling thread without one.
 */
export function createWasmOptimizerKernels(runner?: OptimizerStepRunner, options: { workerMinParams?: number } = {}): OptimizerKernels {
  return {
    create: (rule, paramCount) => {
      try {
        return new ResidentOptimizer(rule, paramCount, { staging: true, runner, ...options });
      } catch (error) {
        // No room for the second bank (a large model on a tight heap): step in place, after the commit, as before.
        if (!(error instanceof RangeError)) throw error;
        return new ResidentOptimizer(rule, paramCount);
      }
    },
  };
}
