// What the aggregator pool offers beyond the Aggregator port: its options, its counters, and a test hook.
import type { Aggregator } from '../../core/ports';
import type { WorkerMemoryBoard } from './supervisor';

export interface AggregatorPoolOptions {
  /** Worker threads; default min(2, os.availableParallelism()). */
  workers?: number;
  /** Upper bound on the shared memory (slots + outputs), default and maximum 4 GiB. Reserved, not committed. */
  maxBytes?: number;
  log?: (line: string) => void;
  /**
   * 'auto' (default): the kernel on workers when the runtime has SIMD and shared memory and the workers start,
   * else the JS reference on the main thread (logged once). 'wasm' throws instead of falling back; 'js' forces it.
   */
  backend?: 'auto' | 'wasm' | 'js';
  /**
   * The worker entry. Default: src/workers/aggregator.worker.ts next to this file's source, run through tsx. A
   * bundled server passes its compiled .js worker file here (see spawnWorker in bootstrap.ts).
   */
  workerUrl?: URL;
  /** Where each worker reports its own memory (for /metrics). */
  memoryBoard?: WorkerMemoryBoard;
}

export interface AggregatorPoolStats {
  /** weightedMean and aggregate calls that resolved. */
  calls: number;
  /** Sum over calls of the time from the call to its result. */
  wallMs: number;
  /** Sum over calls of the slowest worker's kernel time (0 on the JS backend). */
  kernelMs: number;
  /** Bytes of shared memory committed so far. */
  memoryBytes: number;
  liveSlots: number;
  workerRestarts: number;
  /** Outer optimizer steps a worker ran (staged while their round's commit was written). */
  optimizerSteps: number;
}

export interface AggregatorPool extends Aggregator {
  readonly backend: 'wasm-simd' | 'js';
  readonly workerCount: number;
  stats(): AggregatorPoolStats;
  /**
   * Test hook: terminates worker `index` the way a crash would (its pending calls reject, the pool replaces it).
   * Resolves once the worker has exited.
   */
  crashWorkerForTest(index: number): Promise<void>;
  /** Runs an optimizer step on a worker thread (wasm-simd backend only; see OptimizerStepJob). */
  runOptimizerStep?(job: OptimizerStepJob): Promise<void>;
}

/** One outer optimizer step in a resident model's shared memory (optimizer.wat's adam or sgd, these arguments). */
export interface OptimizerStepJob {
  /** Names the memory, so a worker instantiates the kernel on it once. */
  model: number;
  memory: WebAssembly.Memory;
  module: WebAssembly.Module;
  kernel: 'adam' | 'sgd';
  args: number[];
}
