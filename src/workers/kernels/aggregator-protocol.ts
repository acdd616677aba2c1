// Messages between the aggregator pool and its workers, and the worker side's handler.
// Versioned discriminated unions: a worker from another build answers 'failed' instead of misreading a field.
//
// Why postMessage and not Atomics: one weightedMean posts one small message per worker and gets one back.
// Measured on the 2-core dev VM: a bare ping-pong takes 18-76 us by postMessage and 12-60 us by
// Atomics.notify + Atomics.waitAsync (the spread is load from other processes); a whole weightedMean at P = 1
// takes 40-120 us (bench/aggregation.ts). At N = 10, P = 1M the kernel alone takes 1-2 ms, and the result's
// page faults and copy cost more than either handshake, so Atomics would save microseconds, not milliseconds,
// while postMessage brings the crashed worker's 'exit' event on the same path for free.

import { instantiateWeightedSum, type WeightedSumKernel } from './weighted-sum-kernel';

export const AGGREGATOR_PROTOCOL_VERSION = 1;

export type ToAggregatorWorker =
  /** Sent once after spawn: the compiled kernel and the pool's shared memory (both are shared, not copied). */
  | { v: 1; type: 'init'; module: WebAssembly.Module; memory: WebAssembly.Memory }
  /** Run weighted_sum over [first, first + count) of every input; addresses are bytes in the shared memory. */
  | { v: 1; type: 'weighted-sum'; id: number; out: number; table: number; n: number; first: number; count: number };

export type FromAggregatorWorker =
  | { v: 1; type: 'ready' }
  | { v: 1; type: 'done'; id: number; kernelMs: number }
  /** id is null when the failure belongs to no request (init, or a message the worker could not read). */
  | { v: 1; type: 'failed'; id: number | null; message: string };

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
      return { v: 1, type: 'ready' };
    case 'done':
      return isUint(value.id) && typeof value.kernelMs === 'number' ? { v: 1, type: 'done', id: value.id, kernelMs: value.kernelMs } : null;
    case 'failed':
      return (value.id === null || isUint(value.id)) && typeof value.message === 'string'
        ? { v: 1, type: 'failed', id: value.id, message: value.message }
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
    if (!(value.module instanceof WebAssembly.Module) || !(value.memory instanceof WebAssembly.Memory)) {
      return 'init needs a WebAssembly.Module and a WebAssembly.Memory';
    }
    return { v: 1, type: 'init', module: value.module, memory: value.memory };
  }
  if (value.type === 'weighted-sum') {
    const { id, out, table, n, first, count } = value;
    if (!isUint(id) || !isUint(out) || !isUint(table) || !isUint(n) || !isUint(first) || !isUint(count)) {
      return 'weighted-sum needs unsigned 32-bit id, out, table, n, first and count';
    }
    return { v: 1, type: 'weighted-sum', id, out, table, n, first, count };
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
  return (raw) => {
    const message = parseToAggregatorWorker(raw);
    if (typeof message === 'string') {
      post({ v: 1, type: 'failed', id: idOf(raw), message: `aggregator worker: ${message}` });
      return;
    }
    if (message.type === 'init') {
      try {
        kernel = instantiateWeightedSum(message.module, message.memory);
        post({ v: 1, type: 'ready' });
      } catch (err) {
        post({ v: 1, type: 'failed', id: null, message: `aggregator worker: cannot instantiate the kernel: ${messageOf(err)}` });
      }
      return;
    }
    if (!kernel) {
      post({ v: 1, type: 'failed', id: message.id, message: 'aggregator worker: weighted-sum before init' });
      return;
    }
    const started = performance.now();
    try {
      kernel.weighted_sum(message.out, message.table, message.n, message.first, message.count);
      post({ v: 1, type: 'done', id: message.id, kernelMs: performance.now() - started });
    } catch (err) {
      post({ v: 1, type: 'failed', id: message.id, message: `aggregator worker: kernel failed: ${messageOf(err)}` });
    }
  };
}
