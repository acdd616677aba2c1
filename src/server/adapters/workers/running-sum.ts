// The round's running sum for mean-type rules: each update is checked and added as it arrives, in one pass over
// its received bytes (src/workers/kernels/fold.wat), instead of being copied into a slot of its own, inspected,
// and read a third time when the round closes. Per-update slots remain for the rules that need every update at
// once (median, trimmed mean, Multi-Krum) and for anything that must scale an update by its norm first.
//
// Two sums, a and b: a fold writes b = a + w * x and stays tentative until the caller accepts it (a and b swap)
// or discards it (a is untouched). A rejected update therefore never reaches the sum, bit for bit.

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
const SEEDS = [0x811c9dc5 | 0, 0x01000193 | 0, 0x9e3779b9 | 0, 0x85ebca6b | 0];

interface FoldKernel {
  fold(p: number, n: number, a: number, b: number, w: number, st: number, first: number, hash: number): void;
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

  constructor(readonly paramCount: number) {}

  abstract fold(bytes: Uint8Array, weight: number): PayloadStats;
  protected abstract swap(): void;
  abstract mean(): Float32Array;
  abstract close(): void;

  get pending(): boolean {
    return this.pendingWeight !== null;
  }

  accept(): void {
    if (this.pendingWeight === null) throw new Error('accept: no fold is pending');
    this.swap();
    this.accepted++;
    this.totalWeight += this.pendingWeight;
    this.pendingWeight = null;
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
  /** 0: skip the checksum (see checksumOff); its lanes then read as the seeds, which no frame should match. */
  private hash = 1;

  constructor(
    private readonly arena: SharedArena,
    private readonly kernel: FoldKernel,
    paramCount: number,
  ) {
    super(paramCount);
    this.a = arena.alloc(paramCount * 4);
    this.b = arena.alloc(paramCount * 4);
    this.staging = arena.alloc(FOLD_CHUNK_BYTES);
    this.state = arena.alloc(STATE_BYTES);
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
    const staging = new Uint8Array(buffer, this.staging, FOLD_CHUNK_BYTES);
    const first = this.accepted === 0 ? 1 : 0;
    for (let at = 0; at < bytes.byteLength; at += FOLD_CHUNK_BYTES) {
      const len = Math.min(FOLD_CHUNK_BYTES, bytes.byteLength - at);
      staging.set(bytes.subarray(at, at + len));
      this.kernel.fold(this.staging, len >>> 2, this.a + at, this.b + at, w, this.state, first, this.hash);
    }
    this.pendingWeight = w;
    const view = new DataView(buffer, this.state, STATE_BYTES);
    return {
      checksum: foldChecksum(view.getInt32(0, true), view.getInt32(4, true), view.getInt32(8, true), view.getInt32(12, true), this.paramCount),
      nonFinite: view.getInt32(16, true),
      sumSquares: view.getFloat64(24, true),
    };
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

  /** sum / totalWeight as a new array: scaled into the spare buffer in wasm, then one memcpy out. */
  mean(): Float32Array {
    this.checkMean();
    this.kernel.scale(this.a, this.paramCount, Math.fround(1 / this.totalWeight), this.b);
    return new Float32Array(this.arena.memory.buffer, this.b, this.paramCount).slice();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.arena.free(this.a, this.paramCount * 4);
    this.arena.free(this.b, this.paramCount * 4);
    this.arena.free(this.staging, FOLD_CHUNK_BYTES);
    this.arena.free(this.state, STATE_BYTES);
  }
}

/**
 * The JavaScript running sum: the fallback backend's, and the reference the kernel is tested against. Every
 * operation rounds to float32 as the kernel does (w * x, then + a), so both give the same bits.
 */
export class JsRunningSum extends SumBase {
  private a: Float32Array;
  private b: Float32Array;

  constructor(paramCount: number) {
    super(paramCount);
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
    this.pendingWeight = w;
    return stats;
  }

  protected swap(): void {
    const a = this.a;
    this.a = this.b;
    this.b = a;
  }

  mean(): Float32Array {
    this.checkMean();
    const s = Math.fround(1 / this.totalWeight);
    const out = new Float32Array(this.paramCount);
    for (let i = 0; i < out.length; i++) out[i] = this.a[i] * s;
    return out;
  }

  close(): void {
    this.closed = true;
  }
}
