// Messages between the aggregator pool and its workers, and the worker side's handler.
// Versioned discriminated unions: a worker from another build answers 'failed' instead of misreading a field.
//
// Why postMessage and not Atomics: one weightedMean posts one small message per worker and gets one back.
// Measured on the 2-core dev VM: a bare ping-pong takes 18-76 us by postMessage and 12-60 us by
// Atomics.notify + Atomics.waitAsync (the spread is load from other processes); a whole weightedMean at P = 1
// takes 40-120 us (bench/aggregation.ts). At N = 10, P = 1M the kernel alone takes 1-2 ms, and the result's
// page faults and copy cost more than either handshake, so Atomics would save microseconds, not milliseconds,
// while postMessage brings the crashed worker's 'exit' event on the same path for free.

import { instantiateRobust, type RobustKernel } from './robust-kernel';
import { instantiateWeightedSum, type WeightedSumKernel } from './weighted-sum-kernel';

/** 2: init carries the robust kernels too, and the robust, mean-distances, distances and pairwise requests exist. */
export const AGGREGATOR_PROTOCOL_VERSION = 2;
type V = typeof AGGREGATOR_PROTOCOL_VERSION;

export type ToAggregatorWorker =
  /** Sent once after spawn: the compiled kernels and the pool's shared memory (all shared, not copied). */
  | { v: V; type: 'init'; module: WebAssembly.Module; robust: WebAssembly.Module; memory: WebAssembly.Memory }
  /** Run weighted_sum over [first, first + count) of every input; addresses are bytes in the shared memory. */
  | { v: V; type: 'weighted-sum'; id: number; out: number; table: number; n: number; first: number; count: number }
  /** Order statistics over [first, first + count) by the comparator network at net (robust.wat's `robust`). */
  | {
      v: V;
      type: 'robust';
      id: number;
      table: number;
      n: number;
      first: number;
      count: number;
      net: number;
      ncmp: number;
      scratch: number;
      out: number;
      lo: number;
      hi: number;
      div: number;
      dist: number;
    }
  /** Weighted mean of wtable's inputs over [first, first + count), fused with table's distances from it. */
  | { v: V; type: 'mean-distances'; id: number; wtable: number; wn: number; table: number; n: number; first: number; count: number; out: number; dist: number }
  /** Squared distances of every input from agg over [first, first + count), added into dist (n f64). */
  | { v: V; type: 'distances'; id: number; table: number; n: number; first: number; count: number; agg: number; dist: number }
  /** Pairwise squared distances over [first, first + count), added into the n x n f64 matrix at m. */
  | { v: V; type: 'pairwise'; id: number; table: number; n: number; first: number; count: number; m: number }
  /**
   * The outer optimizer's step (optimizer.wat's adam or sgd with these arguments) in a resident model's own shared
   * memory, staged while the main thread makes the round's commit durable. `model` names the memory: a worker
   * instantiates the kernel on it once and reuses that instance while the same model comes back.
   */
  | { v: V; type: 'optimizer-step'; id: number; model: number; memory: WebAssembly.Memory; module: WebAssembly.Module; kernel: 'adam' | 'sgd'; args: number[] };

export type FromAggregatorWorker =
  | { v: V; type: 'ready' }
  | { v: V; type: 'done'; id: number; kernelMs: number }
  /** id is null when the failure belongs to no request (init, or a message the worker could not read). */
  | { v: V; type: 'failed'; id: number | null; message: string };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function isUint(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 0xffffffff;
}

/** Narrows a message from a worker; anything else (another version, a stray post) is null. */
export function parseFromAggregatorWorker(value: unknown): FromAggregatorWorker | null {
  if (!isRecord(value) || value.v !== AGGREGATOR_PROTOCOL_VERSION) return null;
  switch (value.type) {
    case 'ready':
      return { v: 2, type: 'ready' };
    case 'done':
      return isUint(value.id) && typeof value.kernelMs === 'number' ? { v: 2, type: 'done', id: value.id, kernelMs: value.kernelMs } : null;
    case 'failed':
      return (value.id === null || isUint(value.id)) && typeof value.message === 'string'
        ? { v: 2, type: 'failed', id: value.id, message: value.message }
        : null;
    default:
      return null;
  }
}

function parseToAggregatorWorker(value: unknown): ToAggregatorWorker | string {
  if (!isRecord(value)) return 'message is not an object';
  if (value.v !== AGGREGATOR_PROTOCOL_VERSION) {
    return `protocol version ${String(value.v)}; this worker speaks ${AGGREGATOR_PROTOCOL_VERSION}`;
  }
  if (value.type === 'init') {
    if (!(value.module instanceof WebAssembly.Module) || !(value.robust instanceof WebAssembly.Module) || !(value.memory instanceof WebAssembly.Memory)) {
      return 'init needs two WebAssembly.Modules (module, robust) and a WebAssembly.Memory';
    }
    return { v: 2, type: 'init', module: value.module, robust: value.robust, memory: value.memory };
  }
  if (value.type === 'weighted-sum') {
    const { id, out, table, n, first, count } = value;
    if (!isUint(id) || !isUint(out) || !isUint(table) || !isUint(n) || !isUint(first) || !isUint(count)) {
      return 'weighted-sum needs unsigned 32-bit id, out, table, n, first and count';
    }
    return { v: 2, type: 'weighted-sum', id, out, table, n, first, count };
  }
  if (value.type === 'robust') {
    const { id, table, n, first, count, net, ncmp, scratch, out, lo, hi, div, dist } = value;
    if (![id, table, n, first, count, net, ncmp, scratch, out, lo, hi, dist].every(isUint)) {
      return 'robust needs unsigned 32-bit id, table, n, first, count, net, ncmp, scratch, out, lo, hi and dist';
    }
    if (typeof div !== 'number' || !(div > 0) || !Number.isFinite(div)) return 'robust needs a positive finite div';
    const u = (x: unknown) => x as number;
    return { v: 2, type: 'robust', id: u(id), table: u(table), n: u(n), first: u(first), count: u(count), net: u(net), ncmp: u(ncmp), scratch: u(scratch), out: u(out), lo: u(lo), hi: u(hi), div, dist: u(dist) };
  }
  if (value.type === 'mean-distances') {
    const { id, wtable, wn, table, n, first, count, out, dist } = value;
    if (![id, wtable, wn, table, n, first, count, out, dist].every(isUint)) {
      return 'mean-distances needs unsigned 32-bit id, wtable, wn, table, n, first, count, out and dist';
    }
    const u = (x: unknown) => x as number;
    return { v: 2, type: 'mean-distances', id: u(id), wtable: u(wtable), wn: u(wn), table: u(table), n: u(n), first: u(first), count: u(count), out: u(out), dist: u(dist) };
  }
  if (value.type === 'distances') {
    const { id, table, n, first, count, agg, dist } = value;
    if (!isUint(id) || !isUint(table) || !isUint(n) || !isUint(first) || !isUint(count) || !isUint(agg) || !isUint(dist)) {
      return 'distances needs unsigned 32-bit id, table, n, first, count, agg and dist';
    }
    return { v: 2, type: 'distances', id, table, n, first, count, agg, dist };
  }
  if (value.type === 'optimizer-step') {
    const { id, model, memory, module, kernel, args } = value;
    if (!isUint(id) || !isUint(model)) return 'optimizer-step needs unsigned 32-bit id and model';
    if (!(memory instanceof WebAssembly.Memory) || !(module instanceof WebAssembly.Module)) return 'optimizer-step needs a WebAssembly.Memory and a WebAssembly.Module';
    if (kernel !== 'adam' && kernel !== 'sgd') return `optimizer-step: unknown kernel ${String(kernel)}`;
    if (!Array.isArray(args) || args.length !== (kernel === 'adam' ? 13 : 9) || !args.every((a) => typeof a === 'number' && Number.isFinite(a))) {
      return `optimizer-step: ${kernel} takes ${kernel === 'adam' ? 13 : 9} finite numbers`;
    }
    return { v: 2, type: 'optimizer-step', id, model, memory, module, kernel, args: args as number[] };
  }
  if (value.type === 'pairwise') {
    const { id, table, n, first, count, m } = value;
    if (!isUint(id) || !isUint(table) || !isUint(n) || !isUint(first) || !isUint(count) || !isUint(m)) {
      return 'pairwise needs unsigned 32-bit id, table, n, first, count and m';
    }
    return { v: 2, type: 'pairwise', id, table, n, first, count, m };
  }
  return `unknown message type ${String(value.type)}`;
}

function idOf(value: unknown): number | null {
  return isRecord(value) && isUint(value.id) ? value.id : null;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The whole worker: returns the handler for incoming messages. Kernel traps (a bad address) are answered as
 * 'failed' for that request; the worker stays up.
 */
export function createAggregatorWorkerHandler(post: (message: FromAggregatorWorker) => void): (message: unknown) => void {
  let kernel: WeightedSumKernel | null = null;
  let robust: RobustKernel | null = null;
  /** The optimizer kernel on the last resident model's memory (one model is live at a time). */
  let optimizer: { model: number; exports: Record<string, (...args: number[]) => void> } | null = null;
  return (raw) => {
    const message = parseToAggregatorWorker(raw);
    if (typeof message === 'string') {
      post({ v: 2, type: 'failed', id: idOf(raw), message: `aggregator worker: ${message}` });
      return;
    }
    if (message.type === 'init') {
      try {
        kernel = instantiateWeightedSum(message.module, message.memory);
        robust = instantiateRobust(message.robust, message.memory);
        post({ v: 2, type: 'ready' });
      } catch (err) {
        post({ v: 2, type: 'failed', id: null, message: `aggregator worker: cannot instantiate the kernel: ${messageOf(err)}` });
      }
      return;
    }
    if (!kernel || !robust) {
      post({ v: 2, type: 'failed', id: message.id, message: `aggregator worker: ${message.type} before init` });
      return;
    }
    const started = performance.now();
    try {
      switch (message.type) {
        case 'weighted-sum':
          kernel.weighted_sum(message.out, message.table, message.n, message.first, message.count);
          break;
        case 'robust': {
          const m = message;
          robust.robust(m.table, m.n, m.first, m.count, m.net, m.ncmp, m.scratch, m.out, m.lo, m.hi, m.div, m.dist);
          break;
        }
        case 'mean-distances': {
          const m = message;
          robust.weighted_mean(m.wtable, m.wn, m.table, m.n, m.first, m.count, m.out, m.dist);
          break;
        }
        case 'distances':
          robust.distances(message.table, message.n, message.first, message.count, message.agg, message.dist);
          break;
        case 'pairwise':
          robust.pairwise(message.table, message.n, message.first, message.count, message.m);
          break;
        case 'optimizer-step': {
          if (optimizer?.model !== message.model) {
            const instance = new WebAssembly.Instance(message.module, { env: { memory: message.memory } });
            optimizer = { model: message.model, exports: instance.exports as Record<string, (...args: number[]) => void> };
          }
          optimizer.exports[message.kernel](...message.args);
          break;
        }
      }
      post({ v: 2, type: 'done', id: message.id, kernelMs: performance.now() - started });
    } catch (err) {
      post({ v: 2, type: 'failed', id: message.id, message: `aggregator worker: kernel failed: ${messageOf(err)}` });
    }
  };
}
