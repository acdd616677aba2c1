// The shared memory of the aggregator pool: reserving it (probeKernelSupport), allocating slots and outputs in it
// (SharedArena), and the live-slot bookkeeping both backends share (SlotTable).
//
// Why slot views stay valid: a shared memory never moves. V8 reserves its whole `maximum` of address space when
// it is created (virtual only: pages are committed when first touched), and grow() commits more of that
// reservation in place. memory.buffer is then a new, longer SharedArrayBuffer, but earlier ones are not detached
// and alias the same bytes, so a Float32Array handed out before a grow keeps working. We grow in large steps
// anyway, since each grow is a syscall and a new buffer object.
//
// Allocation: a bump pointer plus free lists keyed by exact (64-byte rounded) size. Training reuses the same
// sizes every round (one parameter count), so a released slot is the next one acquired; nothing is ever
// returned to the OS before close().

import { MAX_FRAME_PARAMS } from '../../../protocol/frame';
import type { UpdateSlot } from '../../core/ports';
import { compileRobust } from '../../../workers/kernels/robust-kernel';
import { compileWeightedSum, KERNEL_ALIGN_BYTES, KERNEL_MAX_PAGES, WASM_PAGE_BYTES } from '../../../workers/kernels/weighted-sum-kernel';

export const MAX_MEMORY_BYTES = KERNEL_MAX_PAGES * WASM_PAGE_BYTES;
const INITIAL_MEMORY_BYTES = 16 * 1024 * 1024;
const GROW_STEP_BYTES = 256 * 1024 * 1024;

export type KernelSupport =
  | { ok: true; module: WebAssembly.Module; robust: WebAssembly.Module; memory: WebAssembly.Memory; maxBytes: number }
  | { ok: false; reason: string };

export function probeKernelSupport(maxBytes: number): KernelSupport {
  if (typeof WebAssembly !== 'object' || typeof SharedArrayBuffer !== 'function') {
    return { ok: false, reason: 'no WebAssembly or SharedArrayBuffer in this runtime' };
  }
  let module: WebAssembly.Module;
  let robust: WebAssembly.Module;
  try {
    // Compiling fails right here when SIMD, threads or bulk memory are missing.
    module = compileWeightedSum();
  } catch (err) {
    return { ok: false, reason: `cannot compile weighted-sum.wasm: ${err instanceof Error ? err.message : String(err)}` };
  }
  try {
    robust = compileRobust();
  } catch (err) {
    return { ok: false, reason: `cannot compile robust.wasm: ${err instanceof Error ? err.message : String(err)}` };
  }
  try {
    const maximum = Math.floor(maxBytes / WASM_PAGE_BYTES);
    const initial = Math.min(maximum, INITIAL_MEMORY_BYTES / WASM_PAGE_BYTES);
    const memory = new WebAssembly.Memory({ initial, maximum, shared: true });
    if (!(memory.buffer instanceof SharedArrayBuffer)) return { ok: false, reason: 'WebAssembly.Memory({ shared: true }) is not backed by a SharedArrayBuffer' };
    return { ok: true, module, robust, memory, maxBytes: maximum * WASM_PAGE_BYTES };
  } catch (err) {
    return { ok: false, reason: `cannot reserve a shared memory of ${maxBytes} bytes: ${err instanceof Error ? err.message : String(err)}` };
  }
}

export function roundUp(value: number, multiple: number): number {
  return Math.ceil(value / multiple) * multiple;
}

export function checkParamCount(paramCount: number): void {
  if (!Number.isInteger(paramCount) || paramCount < 1 || paramCount > MAX_FRAME_PARAMS) {
    throw new Error(`acquire: paramCount is ${paramCount}; it must be an integer in [1, ${MAX_FRAME_PARAMS}]`);
  }
}

export interface SlotRecord {
  readonly slot: UpdateSlot;
  readonly offset: number;
  readonly bytes: number;
  /** weightedMean calls reading this slot right now: its memory is freed only when they are done. */
  pins: number;
  released: boolean;
}

/**
 * Live-slot bookkeeping shared by both backends: identity checks, release while in use (deferred until the
 * calls reading it settle), and the size check on weightedMean's arguments.
 */
export class SlotTable {
  private readonly records = new Map<number, SlotRecord>();
  private nextId = 1;

  constructor(private readonly free: (offset: number, bytes: number) => void) {}

  get size(): number {
    return this.records.size;
  }

  add(offset: number, bytes: number, view: Float32Array): UpdateSlot {
    const slot: UpdateSlot = Object.freeze({ id: this.nextId++, view });
    this.records.set(slot.id, { slot, offset, bytes, pins: 0, released: false });
    return slot;
  }

  release(slot: UpdateSlot): void {
    const record = this.records.get(slot.id);
    if (!record || record.slot !== slot || record.released) {
      throw new Error(`release: slot ${slot.id} is not a live slot of this aggregator (released twice, or from another one)`);
    }
    record.released = true;
    if (record.pins === 0) this.drop(record);
  }

  /** Validates and pins the slots of one call; returns their records and the common parameter count. */
  pin(slots: readonly UpdateSlot[], weightCount: number, fn = 'weightedMean'): { records: SlotRecord[]; paramCount: number } {
    if (slots.length === 0) throw new Error(`${fn}: no slots given`);
    if (weightCount !== slots.length) throw new Error(`${fn}: ${slots.length} slots but ${weightCount} weights`);
    const records = slots.map((slot, i) => {
      const record = this.records.get(slot.id);
      if (!record || record.slot !== slot || record.released) {
        throw new Error(`${fn}: slot ${i} (id ${slot.id}) is not a live slot of this aggregator`);
      }
      return record;
    });
    const paramCount = slots[0].view.length;
    for (let i = 1; i < slots.length; i++) {
      if (slots[i].view.length !== paramCount) {
        throw new Error(`${fn}: slot ${i} holds ${slots[i].view.length} values, slot 0 holds ${paramCount}`);
      }
    }
    for (const record of records) record.pins++;
    return { records, paramCount };
  }

  unpin(records: readonly SlotRecord[]): void {
    for (const record of records) {
      record.pins--;
      if (record.pins === 0 && record.released) this.drop(record);
    }
  }

  clear(): void {
    this.records.clear();
  }

  private drop(record: SlotRecord): void {
    this.records.delete(record.slot.id);
    this.free(record.offset, record.bytes);
  }
}

/** Bump allocator with exact-size free lists over the shared memory (see the file comment). */
export class SharedArena {
  private readonly freeLists = new Map<number, number[]>();
  /** Address 0 stays unused so that a zero address in a table is always a bug, never a slot. */
  private top = KERNEL_ALIGN_BYTES;

  constructor(
    readonly memory: WebAssembly.Memory,
    readonly maxBytes: number,
  ) {}

  get committedBytes(): number {
    return this.memory.buffer.byteLength;
  }

  alloc(requestBytes: number): number {
    const bytes = roundUp(Math.max(requestBytes, 1), KERNEL_ALIGN_BYTES);
    const reused = this.freeLists.get(bytes)?.pop();
    if (reused !== undefined) return reused;
    const offset = this.top;
    const end = offset + bytes;
    if (end > this.memory.buffer.byteLength) this.growTo(end);
    this.top = end;
    return offset;
  }

  free(offset: number, requestBytes: number): void {
    const bytes = roundUp(Math.max(requestBytes, 1), KERNEL_ALIGN_BYTES);
    const list = this.freeLists.get(bytes);
    if (list) list.push(offset);
    else this.freeLists.set(bytes, [offset]);
  }

  private growTo(end: number): void {
    if (end > this.maxBytes) {
      throw new Error(
        `aggregator memory exhausted: ${end} bytes needed, maxBytes is ${this.maxBytes} ` +
          `(${this.top} bytes allocated, free lists hold ${this.freeBytes()}); release slots or raise maxBytes`,
      );
    }
    const current = this.memory.buffer.byteLength;
    const target = Math.min(this.maxBytes, Math.max(end, current + GROW_STEP_BYTES));
    this.memory.grow(Math.ceil((target - current) / WASM_PAGE_BYTES));
  }

  private freeBytes(): number {
    let total = 0;
    for (const [bytes, list] of this.freeLists) total += bytes * list.length;
    return total;
  }
}
