// The outer optimizer's step as one fused WebAssembly SIMD pass (src/workers/kernels/optimizer.wat) over the
// parameters and optimizer state kept resident in a memory of their own: no copy in or out per step, only the
// aggregate is written in (or computed in place by the caller through `grad`).
//
// Not wired into the round yet (see docs-for-lead/hotpath.md): the live apply and the crash-recovery replay must
// run the same arithmetic, bit for bit, or a recovered model differs from the one the process had; both go
// through Strategy.applyAggregate, which is where this belongs once the model store keeps its arrays here.
//
// The memory is not shared and never grows: it is sized for one model at creation, so the views handed out
// (params, slots, grad) stay valid for the life of the object.
import { readFileSync } from 'node:fs';
import type { OptimizerConfig } from '../../core/types';

const OPTIMIZER_WASM_URL = new URL('../../../workers/kernels/optimizer.wasm', import.meta.url);
const PAGE = 65536;
let optimizerModule: WebAssembly.Module | null = null;

interface OptimizerKernel {
  adam(p: number, g: number, m: number, v: number, n: number, step: number, eps: number, b1: number, b2: number, c1: number, c2: number): void;
  sgd(p: number, g: number, b: number, n: number, lr: number, mu: number, nesterov: number): void;
}

/** SGD's `nesterov` flag (PyTorch's formula) rides on the config until core/optimizer.ts has it. */
export type KernelOptimizerConfig = OptimizerConfig & { nesterov?: boolean };

export class ResidentOptimizer {
  readonly params: Float32Array;
  /** SGD: [momentum buffer]; Adam: [m, v], as core/optimizer.ts's OptimizerState.slots. */
  readonly slots: Float32Array[];
  /** Where the step reads the aggregate from: write it here, or pass any array to step() (one copy). */
  readonly grad: Float32Array;
  /** Steps applied (Adam's bias correction). */
  step = 0;
  private readonly kernel: OptimizerKernel;
  private readonly offsets: number[];

  constructor(
    readonly config: KernelOptimizerConfig,
    readonly paramCount: number,
  ) {
    const slotCount = config.name === 'adam' ? 2 : 1;
    const bytes = Math.ceil((paramCount * 4) / 64) * 64;
    const arrays = 2 + slotCount;
    const memory = new WebAssembly.Memory({ initial: Math.ceil((64 + arrays * bytes) / PAGE), maximum: Math.ceil((64 + arrays * bytes) / PAGE) });
    optimizerModule ??= new WebAssembly.Module(new Uint8Array(readFileSync(OPTIMIZER_WASM_URL)));
    this.kernel = new WebAssembly.Instance(optimizerModule, { env: { memory } }).exports as unknown as OptimizerKernel;
    this.offsets = Array.from({ length: arrays }, (_, i) => 64 + i * bytes);
    const view = (i: number) => new Float32Array(memory.buffer, this.offsets[i], paramCount);
    this.params = view(0);
    this.grad = view(1);
    this.slots = Array.from({ length: slotCount }, (_, i) => view(2 + i));
  }

  /** One step: params -= update(grad), in place, as applyOptimizerStep in core/optimizer.ts. */
  apply(grad: Float32Array = this.grad): void {
    if (grad.length !== this.paramCount) throw new Error(`gradient has ${grad.length} values, parameters ${this.paramCount}`);
    if (grad !== this.grad) this.grad.set(grad);
    const c = this.config;
    const [p, g, s0, s1] = this.offsets;
    this.step += 1;
    if (c.name === 'sgd') {
      this.kernel.sgd(p, g, s0, this.paramCount, c.learningRate, c.momentum, c.nesterov ? 1 : 0);
      return;
    }
    // Bias correction folded into the step size, in float64, exactly as the reference does.
    const c1 = 1 - Math.pow(c.beta1, this.step);
    const c2 = 1 - Math.pow(c.beta2, this.step);
    this.kernel.adam(p, g, s0, s1, this.paramCount, (c.learningRate * Math.sqrt(c2)) / c1, c.epsilon * Math.sqrt(c2), c.beta1, c.beta2, 1 - c.beta1, 1 - c.beta2);
  }
}
