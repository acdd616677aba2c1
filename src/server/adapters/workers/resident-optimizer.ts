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

const OPTIMIZER_WASM_URL = new URL('../../../workers/kernels/optimizer.wasm', import.meta.url);
const PAGE = 65536;
/** Bytes before the first array: the checksum kernel writes its four lanes at 0. */
const HEADER_BYTES = 64;
let optimizerModule: WebAssembly.Module | null = null;

interface OptimizerKernel {
  adam(p: number, g: number, m: number, v: number, n: number, step: number, eps: number, b1: number, b2: number, c1: number, c2: number, ck: number): void;
  sgd(p: number, g: number, b: number, n: number, lr: number, mu: number, nesterov: number, ck: number): void;
  checksum(p: number, n: number, out: number): void;
}

export class ResidentOptimizer implements ResidentModel {
  readonly params: Float32Array;
  /** Where the step reads the aggregate from: write it here, or pass any array to apply() (one copy). */
  readonly grad: Float32Array;
  /** SGD: [momentum buffer]; Adam: [m, v], as core/optimizer.ts's OptimizerState.slots; step: steps applied. */
  readonly state: OptimizerState;
  private readonly kernel: OptimizerKernel;
  private readonly offsets: number[];
  private readonly lanes: Int32Array;
  /** checksum32 of params as the last step left them (the step computes it); null before the first step. */
  private stepChecksum: number | null = null;

  constructor(
    readonly rule: OuterStepRule,
    readonly paramCount: number,
  ) {
    const slotCount = rule.name === 'adam' ? 2 : 1;
    const bytes = Math.ceil((paramCount * 4) / 64) * 64;
    const arrays = 2 + slotCount;
    const pages = Math.ceil((HEADER_BYTES + arrays * bytes) / PAGE);
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
    optimizerModule ??= new WebAssembly.Module(new Uint8Array(readFileSync(OPTIMIZER_WASM_URL)));
    this.kernel = new WebAssembly.Instance(optimizerModule, { env: { memory } }).exports as unknown as OptimizerKernel;
    this.offsets = Array.from({ length: arrays }, (_, i) => HEADER_BYTES + i * bytes);
    const view = (i: number) => new Float32Array(memory.buffer, this.offsets[i], paramCount);
    this.params = view(0);
    this.grad = view(1);
    this.state = { slots: Array.from({ length: slotCount }, (_, i) => view(2 + i)), step: 0 };
    this.lanes = new Int32Array(memory.buffer, 0, 4);
  }

  get slots(): Float32Array[] {
    return this.state.slots;
  }

  get step(): number {
    return this.state.step;
  }

  /** One step: params -= update(grad), in place, as core/optimizer.ts's applyOptimizerStep / applyNesterovStep. */
  apply(grad: Float32Array = this.grad): void {
    if (grad.length !== this.paramCount) throw new Error(`gradient has ${grad.length} values, parameters ${this.paramCount}`);
    if (grad !== this.grad) this.grad.set(grad);
    const r = this.rule;
    const [p, g, s0, s1] = this.offsets;
    this.state.step += 1;
    if (r.name === 'sgd') {
      this.kernel.sgd(p, g, s0, this.paramCount, r.learningRate, r.momentum, r.nesterov ? 1 : 0, 0);
    } else {
      // Bias correction folded into the step size, in float64, exactly as the reference computes it.
      const c1 = 1 - Math.pow(r.beta1, this.state.step);
      const c2 = 1 - Math.pow(r.beta2, this.state.step);
      this.kernel.adam(p, g, s0, s1, this.paramCount, (r.learningRate * Math.sqrt(c2)) / c1, r.epsilon * Math.sqrt(c2), r.beta1, r.beta2, 1 - r.beta1, 1 - r.beta2, 0);
    }
    this.stepChecksum = this.foldLanes();
  }

  /**
   * checksum32 of the parameters: the one the last step computed on its way (free: its multiply chains run
   * behind the step's divisions), or one pass over them before any step. Parameters are written by apply() only
   * once it has run (the model store's rule; recovery writes into a model before its first step).
   */
  checksum(): number {
    if (this.stepChecksum !== null) return this.stepChecksum;
    this.kernel.checksum(this.offsets[0], this.paramCount, 0);
    return this.foldLanes();
  }

  private foldLanes(): number {
    const [a, b, c, d] = this.lanes;
    return foldChecksum(a, b, c, d, this.paramCount);
  }
}

/** The model store's kernels: every rule OuterStepRule names runs here. */
export const wasmOptimizerKernels: OptimizerKernels = {
  create: (rule, paramCount) => new ResidentOptimizer(rule, paramCount),
};
