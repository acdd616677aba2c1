// Loads and instantiates the weighted-sum WebAssembly kernel (weighted-sum.wat, assembled into the committed
// weighted-sum.wasm by scripts/build-kernels.mjs). The module is compiled once, in the thread that owns the pool,
// and posted to each worker, which instantiates it on the pool's shared memory: workers never read files.

import { readFileSync } from 'node:fs';

/** Every buffer the kernel touches starts on, and is padded to, this many bytes (see the .wat contract). */
export const KERNEL_ALIGN_BYTES = 64;
/** A range handed to one worker starts on a multiple of this many floats (KERNEL_ALIGN_BYTES / 4). */
export const KERNEL_RANGE_ALIGN_FLOATS = 16;
/** One table entry: i32 byte address of an input, f32 weight. */
export const TABLE_ENTRY_BYTES = 8;
/** The module's declared maximum (65536 pages = 4 GiB); the pool's memory must not declare more. */
export const KERNEL_MAX_PAGES = 65536;
export const WASM_PAGE_BYTES = 65536;

export const WEIGHTED_SUM_WASM_URL = new URL('./weighted-sum.wasm', import.meta.url);

export interface WeightedSumKernel {
  /**
   * out[first .. first+count) = sum_j w_j * in_j[first .. first+count), reading the n (address, weight) entries
   * of the table. Byte addresses; first is a float index, a multiple of KERNEL_RANGE_ALIGN_FLOATS.
   */
  weighted_sum(out: number, table: number, n: number, first: number, count: number): void;
  /** Sum of count floats from byte address p: a read-only pass, the bandwidth ceiling for benchmarks. */
  read_sum(p: number, count: number): number;
}

export function readWeightedSumWasm(): Uint8Array<ArrayBuffer> {
  // Copied into a plain ArrayBuffer-backed array, which is what WebAssembly.Module's typings accept.
  return new Uint8Array(readFileSync(WEIGHTED_SUM_WASM_URL));
}

/** Compiles the kernel; throws a CompileError when the runtime lacks SIMD, threads or bulk memory. */
export function compileWeightedSum(bytes: Uint8Array<ArrayBuffer> = readWeightedSumWasm()): WebAssembly.Module {
  return new WebAssembly.Module(bytes);
}

/** Instantiates synchronously: the module is small, and a worker has nothing else to do until it is ready. */
export function instantiateWeightedSum(module: WebAssembly.Module, memory: WebAssembly.Memory): WeightedSumKernel {
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  const { weighted_sum, read_sum } = instance.exports;
  if (typeof weighted_sum !== 'function' || typeof read_sum !== 'function') {
    throw new Error('weighted-sum.wasm does not export weighted_sum and read_sum: rebuild it with scripts/build-kernels.mjs');
  }
  return {
    weighted_sum: weighted_sum as WeightedSumKernel['weighted_sum'],
    read_sum: read_sum as WeightedSumKernel['read_sum'],
  };
}
