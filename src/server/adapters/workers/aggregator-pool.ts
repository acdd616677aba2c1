// The Aggregator port on worker threads and a WebAssembly SIMD kernel over one shared memory.
//
// Memory: one WebAssembly.Memory({ shared: true }) holds every update slot, every output and the small input
// tables. Incoming frames are decoded straight into slots (decodeFrameInto), so the kernel reads the bytes where
// the socket left them, with no copy into wasm memory. Workers each run the kernel on a disjoint range.
//
// The arena (arena.ts) says why slot views stay valid across grows and how slots are allocated; the JS fallback
// lives in js-aggregator.ts.

import os from 'node:os';
import { checkAggregationPlan, multiKrumSelect, normalizeWeights } from '../../core/aggregation';
import { foldChecksum, type PayloadStats } from '../../../protocol/frame';
import type { AggregateResult, AggregationPlan, Aggregator, RunningSum, UpdateSlot } from '../../core/ports';
import { instantiateFold, instantiateInspect, WasmRunningSum } from './running-sum';
import {
  parseFromAggregatorWorker,
  type ToAggregatorWorker,
} from '../../../workers/kernels/aggregator-protocol';
import { checkParamCount, MAX_MEMORY_BYTES, probeKernelSupport, roundUp, SharedArena, SlotTable, type SlotRecord } from './arena';
import { COMPARATOR_BYTES, medianPlan, ROBUST_ROW_BYTES, trimmedMeanPlan, type RankPlan } from '../../../workers/kernels/robust-kernel';
import { JsAggregator } from './js-aggregator';
import { IGNORE, READY, WorkerSupervisor, type WorkerMemoryBoard, type WorkerMessage } from './supervisor';
import {
  KERNEL_RANGE_ALIGN_FLOATS,
  TABLE_ENTRY_BYTES,
  WASM_PAGE_BYTES,
} from '../../../workers/kernels/weighted-sum-kernel';
import type { AggregatorPool, AggregatorPoolOptions, AggregatorPoolStats, OptimizerStepJob } from './aggregator-pool-types';

export type { AggregatorPool, AggregatorPoolOptions, AggregatorPoolStats } from './aggregator-pool-types';

/**
 * Below this many floats per worker, splitting costs more in messages than it saves in kernel time
 * (64K floats x 10 inputs is about 0.1 ms of kernel on one core).
 */
const MIN_FLOATS_PER_PART = 64 * 1024;
const WORKER_START_TIMEOUT_MS = 60_000;
/** Floats in a 4 KiB page: touching one per page faults the whole array in without writing all of it. */
const FLOATS_PER_PAGE = 1024;
const WORKER_ENTRY = new URL('../../../workers/aggregator.worker.ts', import.meta.url);

export async function createAggregatorPool(opts: AggregatorPoolOptions = {}): Promise<AggregatorPool> {
  const log = opts.log ?? (() => {});
  const workers = opts.workers ?? Math.min(2, os.availableParallelism());
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`createAggregatorPool: workers is ${workers}; it must be an integer >= 1`);
  const maxBytes = opts.maxBytes ?? MAX_MEMORY_BYTES;
  if (!Number.isFinite(maxBytes) || maxBytes < WASM_PAGE_BYTES) {
    throw new Error(`createAggregatorPool: maxBytes is ${maxBytes}; it must be at least ${WASM_PAGE_BYTES}`);
  }
  const backend = opts.backend ?? 'auto';
  if (backend === 'js') {
    log('aggregator: JS reference backend (requested), on the main thread');
    return new JsAggregator(maxBytes);
  }
  const support = probeKernelSupport(Math.min(maxBytes, MAX_MEMORY_BYTES));
  if (!support.ok) {
    if (backend === 'wasm') throw new Error(`createAggregatorPool: the WebAssembly kernel is unavailable: ${support.reason}`);
    log(`aggregator: WebAssembly SIMD kernel unavailable (${support.reason}); falling back to the JS reference on the main thread`);
    return new JsAggregator(maxBytes);
  }
  const pool = new WasmAggregatorPool(support.module, support.robust, support.memory, support.maxBytes, workers, opts.workerUrl ?? WORKER_ENTRY, log, opts.memoryBoard);
  try {
    await pool.start();
  } catch (err) {
    await pool.close();
    // A coordinator that cannot start its workers (say, a bundle without the worker file) still aggregates,
    // slowly, rather than refusing to run; 'wasm' (the tests) surfaces the error instead.
    if (backend === 'wasm') throw err;
    log(`aggregator: aggregation workers failed to start (${err instanceof Error ? err.message : String(err)}); falling back to the JS reference on the main thread`);
    return new JsAggregator(maxBytes);
  }
  log(`aggregator: WebAssembly SIMD kernel on ${workers} worker thread(s), shared memory up to ${Math.round(pool.maxBytes / 2 ** 20)} MiB`);
  return pool;
}

/** Every request a kernel worker runs (all but init). */
type KernelRequest = Exclude<ToAggregatorWorker, { type: 'init' }>;
/** A request before the supervisor gives it its id. */
type KernelJob = KernelRequest extends infer R ? (R extends KernelRequest ? Omit<R, 'id'> : never) : never;

/** The aggregator protocol's replies, as the supervisor needs them: a reply carries the kernel time. */
function interpretAggregatorReply(raw: unknown): WorkerMessage<number> {
  const message = parseFromAggregatorWorker(raw);
  if (!message) return IGNORE;
  switch (message.type) {
    case 'ready':
      return READY;
    case 'done':
      return { type: 'reply', id: message.id, value: message.kernelMs };
    case 'failed':
      // A failure that belongs to no request is fatal during init, otherwise the reason kept for a later death.
      return message.id === null ? { type: 'fault', message: message.message } : { type: 'reply-error', id: message.id, message: message.message };
  }
}

class WasmAggregatorPool implements AggregatorPool {
  readonly backend = 'wasm-simd' as const;
  private readonly arena: SharedArena;
  private readonly slots: SlotTable;
  /** One per worker thread. Each restarts its worker at once after a crash; a failed start is retried by the next call. */
  private readonly workers: Array<WorkerSupervisor<KernelRequest, number>> = [];
  private nextWorker = 0;
  private closed = false;
  private readonly counters = { calls: 0, wallMs: 0, kernelMs: 0, workerRestarts: 0, optimizerSteps: 0 };

  constructor(
    module: WebAssembly.Module,
    robust: WebAssembly.Module,
    memory: WebAssembly.Memory,
    maxBytes: number,
    readonly workerCount: number,
    entry: URL,
    log: (line: string) => void,
    memoryBoard?: WorkerMemoryBoard,
  ) {
    this.arena = new SharedArena(memory, maxBytes);
    this.slots = new SlotTable((offset, bytes) => this.arena.free(offset, bytes));
    const init: ToAggregatorWorker = { v: 2, type: 'init', module, robust, memory };
    for (let i = 0; i < workerCount; i++) {
      this.workers.push(
        new WorkerSupervisor<KernelRequest, number>({
          entry,
          name: `aggregator worker ${i}`,
          initMessage: init,
          interpret: interpretAggregatorReply,
          startTimeoutMs: WORKER_START_TIMEOUT_MS,
          restart: 'immediately',
          memoryBoard,
          log: (line) => log(`aggregator: ${line}`),
          onCrash: () => {
            this.counters.workerRestarts++;
          },
        }),
      );
    }
  }

  get maxBytes(): number {
    return this.arena.maxBytes;
  }

  async start(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.start()));
  }

  acquire(paramCount: number): UpdateSlot {
    if (this.closed) throw new Error('acquire: the aggregator is closed');
    checkParamCount(paramCount);
    const bytes = paramCount * 4;
    const offset = this.arena.alloc(bytes);
    // Created on the current buffer; it stays valid across later grows (see the comment in arena.ts).
    return this.slots.add(offset, bytes, new Float32Array(this.arena.memory.buffer, offset, paramCount));
  }

  release(slot: UpdateSlot): void {
    this.slots.release(slot);
  }

  /**
   * Runs the inspection kernel on this thread, over the shared memory the slot lives in: the gateway decodes a
   * frame into a slot and must know at once whether to keep it, so this is synchronous and cheap (one read).
   */
  inspect(slot: UpdateSlot): PayloadStats {
    if (!this.inspector) {
      this.inspector = instantiateInspect(this.arena.memory);
      this.inspectOut = this.arena.alloc(64);
    }
    const view = slot.view;
    this.inspector(view.byteOffset, view.length, this.inspectOut);
    const result = new DataView(this.arena.memory.buffer, this.inspectOut, 32);
    return {
      checksum: foldChecksum(result.getInt32(0, true), result.getInt32(4, true), result.getInt32(8, true), result.getInt32(12, true), view.length),
      nonFinite: result.getInt32(16, true),
      sumSquares: result.getFloat64(24, true),
    };
  }

  private inspector: ((p: number, n: number, out: number) => void) | null = null;
  private inspectOut = -1;
  private foldKernel: ReturnType<typeof instantiateFold> | null = null;

  /** The round's running sum in the shared memory; its fused fold runs on this thread, as inspect does. */
  openSum(paramCount: number): RunningSum {
    if (this.closed) throw new Error('openSum: the aggregator is closed');
    checkParamCount(paramCount);
    this.foldKernel ??= instantiateFold(this.arena.memory);
    return new WasmRunningSum(this.arena, this.foldKernel, paramCount);
  }

  async weightedMean(slots: UpdateSlot[], weights: number[]): Promise<Float32Array> {
    if (this.closed) throw new Error('weightedMean: the aggregator is closed');
    const started = performance.now();
    const { records, paramCount } = this.slots.pin(slots, weights.length);
    let out = -1;
    let table = -1;
    try {
      const normalized = normalizeWeights(weights);
      out = this.arena.alloc(paramCount * 4);
      table = this.arena.alloc(records.length * TABLE_ENTRY_BYTES);
      const entries = new DataView(this.arena.memory.buffer, table, records.length * TABLE_ENTRY_BYTES);
      records.forEach((record, j) => {
        entries.setUint32(j * TABLE_ENTRY_BYTES, record.offset, true);
        entries.setFloat32(j * TABLE_ENTRY_BYTES + 4, normalized[j], true);
      });
      const n = records.length;
      // request() posts at once to a ready worker, so the kernel starts while this thread goes on (it prefaults
      // the result array meanwhile).
      const parts = this.split(paramCount).map(({ first, count }, k) =>
        this.workers[(this.nextWorker + k) % this.workers.length].request((id) => ({ v: 2, type: 'weighted-sum', id, out, table, n, first, count })),
      );
      // Rotate so that concurrent small calls (one part each) spread over the workers.
      this.nextWorker = (this.nextWorker + 1) % this.workers.length;
      // The result is the one copy out of shared memory: callers own it, and `out` goes back to the pool. A
      // fresh 40 MB array costs more in first-touch page faults (about 16 ms here) than in the copy itself
      // (3 ms), so touch its pages now, while the workers run, instead of after.
      const result = new Float32Array(paramCount);
      for (let i = 0; i < paramCount; i += FLOATS_PER_PAGE) result[i] = 0;
      // Wait for every part, failed or not: a part still running writes into `out`, which must not be reused.
      const settled = await Promise.allSettled(parts);
      const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (failed) throw failed.reason instanceof Error ? failed.reason : new Error(String(failed.reason));
      result.set(new Float32Array(this.arena.memory.buffer, out, paramCount));
      this.counters.calls++;
      this.counters.wallMs += performance.now() - started;
      this.counters.kernelMs += Math.max(...settled.map((s) => (s.status === 'fulfilled' ? s.value : 0)));
      return result;
    } finally {
      if (out >= 0) this.arena.free(out, paramCount * 4);
      if (table >= 0) this.arena.free(table, records.length * TABLE_ENTRY_BYTES);
      this.slots.unpin(records);
    }
  }

  /**
   * Every rule of the port, on the workers. The work is split by coordinate range as for weightedMean, one part
   * per worker; what each part sends back (distance sums, Multi-Krum's pairwise matrix) is summed here. Every
   * kernel measures the distances of the inputs from the aggregate block by block, while the block is in cache.
   */
  async aggregate(slots: UpdateSlot[], plan: AggregationPlan): Promise<AggregateResult> {
    if (this.closed) throw new Error('aggregate: the aggregator is closed');
    checkAggregationPlan(plan, slots.length);
    const started = performance.now();
    const { records, paramCount } = this.slots.pin(slots, slots.length, 'aggregate');
    const n = records.length;
    const held: Array<[offset: number, bytes: number]> = [];
    const alloc = (bytes: number): number => {
      const offset = this.arena.alloc(bytes);
      held.push([offset, bytes]);
      return offset;
    };
    /** A zeroed float64 area (distance sums and matrices are added into). */
    const zeroed = (count: number): number => {
      const offset = alloc(count * 8);
      new Float64Array(this.arena.memory.buffer, offset, count).fill(0);
      return offset;
    };
    let kernelMs = 0;
    try {
      const weights = plan.rule === 'weighted-mean' ? normalizeWeights(plan.weights) : records.map(() => 0);
      const table = this.writeTable(alloc(n * TABLE_ENTRY_BYTES), records, weights);
      const out = alloc(paramCount * 4);
      const parts = this.split(paramCount);
      const dist = parts.map(() => zeroed(n));
      const base = this.nextWorker;
      this.nextWorker = (this.nextWorker + 1) % this.workers.length;
      let kept: number[] | undefined;
      let scores: Float64Array | undefined;
      let phase: Promise<number>;
      if (plan.rule === 'weighted-mean') {
        phase = this.runParts(base, parts, ({ first, count }, k) => [
          { v: 2, type: 'mean-distances', wtable: table, wn: n, table, n, first, count, out, dist: dist[k] },
        ]);
      } else if (plan.rule === 'trimmed-mean' || plan.rule === 'median') {
        const net = this.network(n, plan.rule === 'median' ? 'median' : plan.trim);
        const scratch = parts.map(() => alloc(n * ROBUST_ROW_BYTES));
        phase = this.runParts(base, parts, ({ first, count }, k) => [
          { v: 2, type: 'robust', table, n, first, count, net: net.offset, ncmp: net.ncmp, scratch: scratch[k], out, lo: net.lo, hi: net.hi, div: net.div, dist: dist[k] },
        ]);
      } else {
        // Multi-Krum: pairwise distances first (every part adds its range's share), then the selection here,
        // then the mean of the kept and everyone's distance from it, in one more pass.
        const matrices = parts.map(() => zeroed(n * n));
        kernelMs += await this.runParts(base, parts, ({ first, count }, k) => [{ v: 2, type: 'pairwise', table, n, first, count, m: matrices[k] }]);
        const squared = this.sumF64(matrices, n * n);
        ({ kept, scores } = multiKrumSelect(squared, n, plan.f, plan.m));
        const keptRecords = kept.map((i) => records[i]);
        const keptTable = this.writeTable(alloc(kept.length * TABLE_ENTRY_BYTES), keptRecords, normalizeWeights(kept.map(() => 1)));
        const wn = kept.length;
        phase = this.runParts(base, parts, ({ first, count }, k) => [
          { v: 2, type: 'mean-distances', wtable: keptTable, wn, table, n, first, count, out, dist: dist[k] },
        ]);
      }
      // As in weightedMean: fault the result's pages in while the workers run.
      const aggregate = new Float32Array(paramCount);
      for (let i = 0; i < paramCount; i += FLOATS_PER_PAGE) aggregate[i] = 0;
      kernelMs += await phase;
      aggregate.set(new Float32Array(this.arena.memory.buffer, out, paramCount));
      const distances = this.sumF64(dist, n);
      for (let i = 0; i < n; i++) distances[i] = Math.sqrt(distances[i]);
      this.counters.calls++;
      this.counters.wallMs += performance.now() - started;
      this.counters.kernelMs += kernelMs;
      const result: AggregateResult = { aggregate, distances };
      if (kept) {
        result.kept = kept;
        result.scores = scores;
      }
      return result;
    } finally {
      for (const [offset, bytes] of held) this.arena.free(offset, bytes);
      this.slots.unpin(records);
    }
  }

  /** Comparator networks live in the shared memory for the pool's lifetime, one per (N, rule, trim). */
  private readonly networks = new Map<string, RankPlan & { offset: number; ncmp: number }>();

  private network(n: number, rule: 'median' | number): RankPlan & { offset: number; ncmp: number } {
    const key = `${n}:${rule}`;
    let found = this.networks.get(key);
    if (!found) {
      const plan = rule === 'median' ? medianPlan(n) : trimmedMeanPlan(n, rule);
      const ncmp = plan.network.length;
      const offset = this.arena.alloc(Math.max(1, ncmp) * COMPARATOR_BYTES);
      const words = new Int32Array(this.arena.memory.buffer, offset, ncmp * 2);
      plan.network.forEach(([a, b], c) => {
        words[2 * c] = a * ROBUST_ROW_BYTES;
        words[2 * c + 1] = b * ROBUST_ROW_BYTES;
      });
      found = { ...plan, offset, ncmp };
      this.networks.set(key, found);
    }
    return found;
  }

  private writeTable(table: number, records: readonly SlotRecord[], weights: readonly number[]): number {
    const entries = new DataView(this.arena.memory.buffer, table, records.length * TABLE_ENTRY_BYTES);
    records.forEach((record, j) => {
      entries.setUint32(j * TABLE_ENTRY_BYTES, record.offset, true);
      entries.setFloat32(j * TABLE_ENTRY_BYTES + 4, weights[j], true);
    });
    return table;
  }

  /** Element-wise sum of float64 areas in the shared memory, into a new array. */
  private sumF64(areas: readonly number[], count: number): Float64Array {
    const sum = new Float64Array(count);
    for (const area of areas) {
      const view = new Float64Array(this.arena.memory.buffer, area, count);
      for (let i = 0; i < count; i++) sum[i] += view[i];
    }
    return sum;
  }

  /**
   * Posts each part's jobs, in order, to one worker (part k to worker base + k), waits for all of them, failed
   * or not (a part still running writes into memory that must not be reused), and throws the first failure.
   * Resolves to the slowest part's kernel time.
   */
  private async runParts(base: number, parts: ReadonlyArray<{ first: number; count: number }>, jobs: (part: { first: number; count: number }, k: number) => KernelJob[]): Promise<number> {
    const perPart = parts.map((part, k) => {
      const worker = this.workers[(base + k) % this.workers.length];
      return jobs(part, k).map((job) => worker.request((id) => ({ ...job, id }) as KernelRequest));
    });
    const settled = await Promise.allSettled(perPart.flat());
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason instanceof Error ? failed.reason : new Error(String(failed.reason));
    let index = 0;
    let slowest = 0;
    for (const jobsOfPart of perPart) {
      let ms = 0;
      for (let j = 0; j < jobsOfPart.length; j++) {
        const s = settled[index++];
        if (s.status === 'fulfilled') ms += s.value;
      }
      slowest = Math.max(slowest, ms);
    }
    return slowest;
  }

  /** Ranges of at least MIN_FLOATS_PER_PART floats, one per worker, starting on kernel-aligned indices. */
  private split(paramCount: number): Array<{ first: number; count: number }> {
    const partCount = Math.max(1, Math.min(this.workers.length, Math.floor(paramCount / MIN_FLOATS_PER_PART)));
    const partSize = roundUp(Math.ceil(paramCount / partCount), KERNEL_RANGE_ALIGN_FLOATS);
    const parts: Array<{ first: number; count: number }> = [];
    for (let first = 0; first < paramCount; first += partSize) {
      parts.push({ first, count: Math.min(partSize, paramCount - first) });
    }
    return parts;
  }

  /**
   * The outer optimizer's step on a worker (resident-optimizer.ts stages it there while the main thread makes the
   * round's commit durable). One worker, not split: the step feeds the model frame's checksum, a serial chain.
   */
  runOptimizerStep(job: OptimizerStepJob): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the aggregator is closed'));
    const worker = this.workers[this.nextWorker++ % this.workers.length];
    return worker.request((id) => ({ v: 2, type: 'optimizer-step', id, ...job })).then(() => {
      this.counters.optimizerSteps++;
    });
  }

  stats(): AggregatorPoolStats {
    return { ...this.counters, memoryBytes: this.arena.committedBytes, liveSlots: this.slots.size };
  }

  async crashWorkerForTest(index: number): Promise<void> {
    const worker = this.workers[index];
    if (!worker) throw new Error(`crashWorkerForTest: no worker ${index}`);
    await worker.crashForTest();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = new Error('the aggregator was closed while this call was running');
    await Promise.all(this.workers.map((worker) => worker.close(err)));
    this.slots.clear();
  }
}

