// The round's running sum for mean-type rules: each update is checked and added as it arrives, in one pass over
// its received bytes (src/workers/kernels/fold.wat), instead of being copied into a slot of its own, inspected,
// and read a third time when the round closes. Per-update slots remain for the rules that need every update at
// once (median, trimmed mean, Multi-Krum) and for anything that must scale an update by its norm first.
//
// Two sums, a and b: a fold writes b = a + w * x and stays tentative until the caller accepts it (a and b swap)
// or discards it (a is untouched). A rejected update therefore never reaches the sum, bit for bit.

import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { foldChecksum, inspectPayload, type PayloadStats } from '../../../protocol/frame';
import type { RunningSum } from '../../core/ports';
import type { SharedArena } from './arena';

const FOLD_WASM_URL = new URL('../../../workers/kernels/fold.wasm', import.meta.url);
/**
 * Bytes copied from the socket buffer into wasm memory per kernel call: small enough to stay in L1/L2 between
 * the copy and the kernel's read, large enough that the call overhead (under a microsecond) is noise.
 */
export const FOLD_CHUNK_BYTES = 64 * 1024;
const STATE_BYTES = 64;
/** Buckets of an update's sketch (fold.wat): 8 KiB, relative distance error about sqrt(2 / K) = 3%. */
export const SKETCH_BUCKETS = 2048;
const SKETCH_BYTES = SKETCH_BUCKETS * 4;
/** Bytes per sketch group (4 floats): the kernel's group index of a chunk at byte `at` is at / 16. */
const GROUP_BYTES = 16;

/** The round's sketch seed: drawn here, never sent, so a node cannot shape an update to hide in the sketch. */
export function drawSketchSeed(): number {
  return randomInt(0, 2 ** 32) | 0;
}

/** The sign the sketch gives 4-float group g under `seed` (as fold.wat: the top bit of (g ^ seed) * golden). */
export function sketchSignBit(group: number, seed: number): number {
  return Math.imul(group ^ seed, 0x9e3779b1 | 0) & 0x80000000;
}

/**
 * Each update's estimated L2 distance from the weighted mean of all of them, from their sketches alone: the
 * sketch is linear, so the mean's sketch is the weighted mean of the sketches.
 */
export function sketchDistances(sketches: readonly Float32Array[], weights: readonly number[]): number[] {
  if (sketches.length === 0) return [];
  const total = weights.reduce((a, w) => a + w, 0);
  const mean = new Float64Array(SKETCH_BUCKETS);
  sketches.forEach((s, i) => {
    const w = weights[i] / total;
    for (let j = 0; j < SKETCH_BUCKETS; j++) mean[j] += w * s[j];
  });
  return sketches.map((s) => {
    let d = 0;
    for (let j = 0; j < SKETCH_BUCKETS; j++) {
      const e = s[j] - mean[j];
      d += e * e;
    }
    return Math.sqrt(d);
  });
}
const SEEDS = [0x811c9dc5 | 0, 0x01000193 | 0, 0x9e3779b9 | 0, 0x85ebca6b | 0];

interface FoldKernel {
  fold(p: number, n: number, a: number, b: number, w: number, st: number, first: number, hash: number, sk: number, group: number, seed: number): void;
  scale(p: number, n: number, s: number, out: number): void;
}

let foldModule: WebAssembly.Module | null = null;
const INSPECT_WASM_URL = new URL('../../../workers/kernels/inspect.wasm', import.meta.url);
let inspectModule: WebAssembly.Module | null = null;

/** The one-pass inspection kernel (inspect.wat: the same checks without the add), for updates kept in slots. */
export function instantiateInspect(memory: WebAssembly.Memory): (p: number, n: number, out: number) => void {
  inspectModule ??= new WebAssembly.Module(new Uint8Array(readFileSync(INSPECT_WASM_URL)));
  const { inspect } = new WebAssembly.Instance(inspectModule, { env: { memory } }).exports;
  if (typeof inspect !== 'function') throw new Error('inspect.wasm does not export inspect: rebuild it with scripts/build-kernels.mjs');
  return inspect as (p: number, n: number, out: number) => void;
}

export function instantiateFold(memory: WebAssembly.Memory): FoldKernel {
  foldModule ??= new WebAssembly.Module(new Uint8Array(readFileSync(FOLD_WASM_URL)));
  const { fold, scale } = new WebAssembly.Instance(foldModule, { env: { memory } }).exports;
  if (typeof fold !== 'function' || typeof scale !== 'function') throw new Error('fold.wasm does not export fold and scale: rebuild it with scripts/build-kernels.mjs');
  return { fold: fold as FoldKernel['fold'], scale: scale as FoldKernel['scale'] };
}

function checkFoldArgs(paramCount: number, bytes: Uint8Array, weight: number, pending: boolean, closed: boolean): void {
  if (closed) throw new Error('fold: the running sum was closed');
  if (pending) throw new Error('fold: the previous fold was neither accepted nor discarded');
  if (bytes.byteLength !== paramCount * 4) throw new Error(`fold: ${bytes.byteLength} bytes, the sum holds ${paramCount} float32`);
  if (!(Number.isFinite(weight) && weight >= 0)) throw new Error(`fold: weight ${weight} must be finite and not negative`);
}

/** Bookkeeping both backends share: the tentative fold, the accepted count and weight. */
abstract class SumBase implements RunningSum {
  protected pendingWeight: number | null = null;
  protected closed = false;
  accepted = 0;
  totalWeight = 0;
  /** The accepted updates' sketches and weights, in accept order. */
  private readonly sketches: Float32Array[] = [];
  private readonly weights: number[] = [];

  constructor(
    readonly paramCount: number,
    /** The round's sketch seed (drawSketchSeed; fixed only in tests). */
    protected readonly seed: number,
  ) {}

  abstract fold(bytes: Uint8Array, weight: number): PayloadStats;
  protected abstract swap(): void;
  /** A copy of the pending update's sketch. */
  protected abstract pendingSketch(): Float32Array;
  /** sum / totalWeight, into `into` when given (paramCount floats: memory already mapped), else a new array. */
  abstract mean(into?: Float32Array): Float32Array;
  abstract close(): void;

  get pending(): boolean {
    return this.pendingWeight !== null;
  }

  accept(): void {
    if (this.pendingWeight === null) throw new Error('accept: no fold is pending');
    this.swap();
    this.sketches.push(this.pendingSketch());
    this.weights.push(this.pendingWeight);
    this.accepted++;
    this.totalWeight += this.pendingWeight;
    this.pendingWeight = null;
  }

  /**
   * Norm clipping after the fact: the accepted update `index` (accept order), whose received bytes are `bytes`,
   * counts `scale` times itself from now on (its weight in the mean's denominator is unchanged, as when a slot is
   * scaled before the mean). Adds (scale - 1) x weight x update into the sum and scales its sketch.
   */
  rescale(index: number, bytes: Uint8Array, scale: number): void {
    if (this.closed) throw new Error('rescale: the running sum was closed');
    if (this.pendingWeight !== null) throw new Error('rescale: a fold is pending');
    const weight = this.weights[index];
    if (weight === undefined) throw new Error(`rescale: no accepted update ${index}`);
    if (!(Number.isFinite(scale) && scale >= 0 && scale <= 1)) throw new Error(`rescale: scale ${scale} must be in [0, 1]`);
    if (bytes.byteLength !== this.paramCount * 4) throw new Error(`rescale: ${bytes.byteLength} bytes, the sum holds ${this.paramCount} float32`);
    if (scale === 1) return;
    this.addInto(bytes, Math.fround((scale - 1) * weight));
    const sketch = this.sketches[index];
    for (let j = 0; j < sketch.length; j++) sketch[j] *= scale;
  }

  /** sum += weight x bytes, committed at once (the kernel's b = a + w x, then the swap). */
  protected abstract addInto(bytes: Uint8Array, weight: number): void;

  /** Each accepted update's estimated distance from the mean, in accept order (the outlier scores' input). */
  distances(): number[] {
    if (this.closed) throw new Error('distances: the running sum was closed');
    return sketchDistances(this.sketches, this.weights);
  }

  discard(): void {
    if (this.pendingWeight === null) throw new Error('discard: no fold is pending');
    this.pendingWeight = null;
  }

  protected checkMean(): void {
    if (this.closed) throw new Error('mean: the running sum was closed');
    if (this.pendingWeight !== null) throw new Error('mean: a fold is still pending');
    if (!(this.totalWeight > 0)) throw new Error(`mean: ${this.accepted} updates accepted with a total weight of ${this.totalWeight}; no mean`);
  }
}

/** The WebAssembly SIMD running sum, in the aggregator pool's shared memory, on the calling thread. */
export class WasmRunningSum extends SumBase {
  private a: number;
  private b: number;
  private readonly staging: number;
  private readonly state: number;
  private readonly sketch: number;
  /** 0: skip the checksum (see checksumOff); its lanes then read as the seeds, which no frame should match. */
  private hash = 1;

  constructor(
    private readonly arena: SharedArena,
    private readonly kernel: FoldKernel,
    paramCount: number,
    seed = drawSketchSeed(),
  ) {
    super(paramCount, seed);
    this.a = arena.alloc(paramCount * 4);
    this.b = arena.alloc(paramCount * 4);
    this.staging = arena.alloc(FOLD_CHUNK_BYTES);
    this.state = arena.alloc(STATE_BYTES);
    this.sketch = arena.alloc(SKETCH_BYTES);
  }

  fold(bytes: Uint8Array, weight: number): PayloadStats {
    checkFoldArgs(this.paramCount, bytes, weight, this.pending, this.closed);
    const w = Math.fround(weight);
    // The memory may have grown since the last call: take the current buffer each time.
    const buffer = this.arena.memory.buffer;
    const st = new Int32Array(buffer, this.state, 4);
    st.set(SEEDS);
    new Int32Array(buffer, this.state + 16, 2).fill(0);
    new Float64Array(buffer, this.state + 24, 1)[0] = 0;
    new Float32Array(buffer, this.sketch, SKETCH_BUCKETS).fill(0);
    this.pass(bytes, w, this.accepted === 0 ? 1 : 0, this.hash);
    this.pendingWeight = w;
    const view = new DataView(buffer, this.state, STATE_BYTES);
    return {
      checksum: foldChecksum(view.getInt32(0, true), view.getInt32(4, true), view.getInt32(8, true), view.getInt32(12, true), this.paramCount),
      nonFinite: view.getInt32(16, true),
      sumSquares: view.getFloat64(24, true),
    };
  }

  /** One kernel pass over `bytes` a chunk at a time (copied into the staging area, where it stays in cache). */
  private pass(bytes: Uint8Array, w: number, first: number, hash: number): void {
    const staging = new Uint8Array(this.arena.memory.buffer, this.staging, FOLD_CHUNK_BYTES);
    for (let at = 0; at < bytes.byteLength; at += FOLD_CHUNK_BYTES) {
      const len = Math.min(FOLD_CHUNK_BYTES, bytes.byteLength - at);
      staging.set(bytes.subarray(at, at + len));
      this.kernel.fold(this.staging, len >>> 2, this.a + at, this.b + at, w, this.state, first, hash, this.sketch, at / GROUP_BYTES, this.seed);
    }
  }

  protected addInto(bytes: Uint8Array, weight: number): void {
    // The pass also writes the check lanes and the pending sketch: scratch here, reset by the next fold.
    this.pass(bytes, weight, 0, 0);
    this.swap();
  }

  /**
   * For measurement, and the seam for frames that carry no checksum (none do yet: the protocol always has one):
   * the checksum lanes are the pass's bound, so the benchmark reports what the pass costs without them.
   */
  checksumOff(): void {
    this.hash = 0;
  }

  protected swap(): void {
    const a = this.a;
    this.a = this.b;
    this.b = a;
  }

  protected pendingSketch(): Float32Array {
    return new Float32Array(this.arena.memory.buffer, this.sketch, SKETCH_BUCKETS).slice();
  }

  /**
   * sum / totalWeight: scaled into the spare buffer in wasm, then one memcpy out, into `into` when given (a fresh
   * array's page faults cost several times the copy on this VM: 2-9 ms against 0.4-0.8 ms at 1M parameters).
   */
  mean(into?: Float32Array): Float32Array {
    this.checkMean();
    checkTarget(into, this.paramCount);
    this.kernel.scale(this.a, this.paramCount, Math.fround(1 / this.totalWeight), this.b);
    const scaled = new Float32Array(this.arena.memory.buffer, this.b, this.paramCount);
    if (!into) return scaled.slice();
    into.set(scaled);
    return into;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.arena.free(this.a, this.paramCount * 4);
    this.arena.free(this.b, this.paramCount * 4);
    this.arena.free(this.staging, FOLD_CHUNK_BYTES);
    this.arena.free(this.state, STATE_BYTES);
    this.arena.free(this.sketch, SKETCH_BYTES);
  }
}

/**
 * The JavaScript running sum: the fallback backend's, and the reference the kernel is tested against. Every
 * operation rounds to float32 as the kernel does (w * x, then + a), so both give the same bits.
 */
export class JsRunningSum extends SumBase {
  private a: Float32Array;
  private b: Float32Array;
  private readonly sketch = new Float32Array(SKETCH_BUCKETS);

  constructor(paramCount: number, seed = drawSketchSeed()) {
    super(paramCount, seed);
    this.a = new Float32Array(paramCount);
    this.b = new Float32Array(paramCount);
  }

  fold(bytes: Uint8Array, weight: number): PayloadStats {
    checkFoldArgs(this.paramCount, bytes, weight, this.pending, this.closed);
    const w = Math.fround(weight);
    const x =
      bytes.byteOffset % 4 === 0
        ? new Float32Array(bytes.buffer, bytes.byteOffset, this.paramCount)
        : new Float32Array(bytes.slice().buffer, 0, this.paramCount);
    const stats = inspectPayload(x);
    const { a, b } = this;
    if (this.accepted === 0) for (let i = 0; i < x.length; i++) b[i] = Math.fround(w * x[i]);
    else for (let i = 0; i < x.length; i++) b[i] = a[i] + Math.fround(w * x[i]);
    const sketch = this.sketch.fill(0);
    for (let i = 0; i < x.length; i++) {
      const j = i & (SKETCH_BUCKETS - 1);
      sketch[j] += sketchSignBit(i >>> 2, this.seed) ? -x[i] : x[i];
    }
    this.pendingWeight = w;
    return stats;
  }

  protected pendingSketch(): Float32Array {
    return this.sketch.slice();
  }

  protected addInto(bytes: Uint8Array, weight: number): void {
    const x = bytes.byteOffset % 4 === 0 ? new Float32Array(bytes.buffer, bytes.byteOffset, this.paramCount) : new Float32Array(bytes.slice().buffer, 0, this.paramCount);
    const { a, b } = this;
    for (let i = 0; i < x.length; i++) b[i] = a[i] + Math.fround(weight * x[i]);
    this.swap();
  }

  protected swap(): void {
    const a = this.a;
    this.a = this.b;
    this.b = a;
  }

  mean(into?: Float32Array): Float32Array {
    this.checkMean();
    checkTarget(into, this.paramCount);
    const s = Math.fround(1 / this.totalWeight);
    const out = into ?? new Float32Array(this.paramCount);
    for (let i = 0; i < out.length; i++) out[i] = this.a[i] * s;
    return out;
  }

  close(): void {
    this.closed = true;
  }
}

function checkTarget(into: Float32Array | undefined, paramCount: number): void {
  if (into && into.length !== paramCount) throw new Error(`mean: the target holds ${into.length} floats, the sum ${paramCount}`);
}
