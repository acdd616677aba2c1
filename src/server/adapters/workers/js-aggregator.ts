// The aggregator pool's fallback backend: the JS reference on the main thread, for runtimes without WebAssembly
// SIMD or shared memory, a bundle whose workers cannot start, or backend 'js' (see createAggregatorPool).

import { aggregateReference, checkAggregationPlan, weightedMeanInto } from '../../core/aggregation';
import { inspectPayload, type PayloadStats } from '../../../protocol/frame';
import type { AggregateResult, AggregationPlan, RunningSum, UpdateSlot } from '../../core/ports';
import { JsRunningSum } from './running-sum';
import type { AggregatorPool, AggregatorPoolStats } from './aggregator-pool';
import { checkParamCount, SlotTable } from './arena';

/**
 * The fallback: the same port, slots in ordinary ArrayBuffers, the JS reference on the main thread.
 * It blocks the event loop for the length of each call (about 3-4 GB/s of input), so it is logged at startup.
 */
export class JsAggregator implements AggregatorPool {
  readonly backend = 'js' as const;
  readonly workerCount = 0;

  inspect(slot: UpdateSlot): PayloadStats {
    return inspectPayload(slot.view);
  }

  openSum(paramCount: number): RunningSum {
    checkParamCount(paramCount);
    return new JsRunningSum(paramCount);
  }

  private readonly freeLists = new Map<number, Float32Array[]>();
  private readonly slots: SlotTable;
  private readonly viewsByOffset = new Map<number, Float32Array>();
  private nextOffset = 0;
  private committed = 0;
  private closed = false;
  private readonly counters = { calls: 0, wallMs: 0, kernelMs: 0, workerRestarts: 0 };

  constructor(private readonly maxBytes: number) {
    this.slots = new SlotTable((offset) => {
      const view = this.viewsByOffset.get(offset);
      if (!view) return;
      this.viewsByOffset.delete(offset);
      const list = this.freeLists.get(view.length);
      if (list) list.push(view);
      else this.freeLists.set(view.length, [view]);
    });
  }

  acquire(paramCount: number): UpdateSlot {
    if (this.closed) throw new Error('acquire: the aggregator is closed');
    checkParamCount(paramCount);
    let view = this.freeLists.get(paramCount)?.pop();
    if (!view) {
      if (this.committed + paramCount * 4 > this.maxBytes) {
        throw new Error(`aggregator memory exhausted: ${this.committed + paramCount * 4} bytes needed, maxBytes is ${this.maxBytes}; release slots or raise maxBytes`);
      }
      view = new Float32Array(paramCount);
      this.committed += paramCount * 4;
    }
    // A synthetic offset keys the view for the shared SlotTable bookkeeping.
    const offset = this.nextOffset++;
    this.viewsByOffset.set(offset, view);
    return this.slots.add(offset, paramCount * 4, view);
  }

  release(slot: UpdateSlot): void {
    this.slots.release(slot);
  }

  async weightedMean(slots: UpdateSlot[], weights: number[]): Promise<Float32Array> {
    if (this.closed) throw new Error('weightedMean: the aggregator is closed');
    const started = performance.now();
    const { records, paramCount } = this.slots.pin(slots, weights.length);
    try {
      const out = weightedMeanInto(new Float32Array(paramCount), slots.map((s) => s.view), weights);
      this.counters.calls++;
      this.counters.wallMs += performance.now() - started;
      return out;
    } finally {
      this.slots.unpin(records);
    }
  }

  async aggregate(slots: UpdateSlot[], plan: AggregationPlan): Promise<AggregateResult> {
    if (this.closed) throw new Error('aggregate: the aggregator is closed');
    checkAggregationPlan(plan, slots.length);
    const started = performance.now();
    const { records } = this.slots.pin(slots, slots.length, 'aggregate');
    try {
      const result = aggregateReference(slots.map((s) => s.view), plan);
      this.counters.calls++;
      this.counters.wallMs += performance.now() - started;
      return result;
    } finally {
      this.slots.unpin(records);
    }
  }

  stats(): AggregatorPoolStats {
    return { ...this.counters, memoryBytes: this.committed, liveSlots: this.slots.size, optimizerSteps: 0 };
  }

  async crashWorkerForTest(): Promise<void> {
    throw new Error('crashWorkerForTest: the JS backend has no workers');
  }

  async close(): Promise<void> {
    this.closed = true;
    this.slots.clear();
    this.freeLists.clear();
    this.viewsByOffset.clear();
  }
}
