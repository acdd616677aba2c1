import { createHash } from 'node:crypto';
// Fakes for unit tests of the coordinator service: a clock you advance, an in-memory aggregator using the
// reference math, a checkpoint store in a Map, an evaluator with scripted answers, and agent links that
// record what was sent to them.
import type { AgentLink, CoordinatorMessage } from '../../src/server/core/agent-protocol';
import { aggregateReference, weightedMeanInto } from '../../src/server/core/aggregation';
import { decodeFrame, inspectPayload } from '../../src/protocol/frame';
import type { AggregateResult, AggregationPlan, Aggregator, CheckpointPayload, CheckpointStore, Clock, Evaluator, UpdateSlot } from '../../src/server/core/ports';

export class FakeClock implements Clock {
  private current: number;
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private nextId = 1;

  constructor(start = 1_700_000_000_000) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  setTimeout(fn: () => void, ms: number): () => void {
    const id = this.nextId++;
    this.timers.push({ at: this.current + ms, fn, id });
    return () => {
      this.timers = this.timers.filter((t) => t.id !== id);
    };
  }

  /** Moves time forward, firing due timers in order (timers they set are honoured within the same advance). */
  advance(ms: number): void {
    const end = this.current + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at || a.id - b.id);
      const next = this.timers[0];
      if (!next || next.at > end) break;
      this.timers.shift();
      this.current = next.at;
      next.fn();
    }
    this.current = end;
  }
}

export class FakeAggregator implements Aggregator {
  private nextId = 1;
  readonly live = new Set<number>();

  acquire(paramCount: number): UpdateSlot {
    const slot = { id: this.nextId++, view: new Float32Array(paramCount) };
    this.live.add(slot.id);
    return slot;
  }

  release(slot: UpdateSlot): void {
    this.live.delete(slot.id);
  }

  inspect(slot: UpdateSlot) {
    return inspectPayload(slot.view);
  }

  async weightedMean(slots: UpdateSlot[], weights: number[]): Promise<Float32Array> {
    const out = new Float32Array(slots[0].view.length);
    return weightedMeanInto(out, slots.map((s) => s.view), weights);
  }

  /** The core reference for every rule (aggregateReference), on this thread. */
  async aggregate(slots: UpdateSlot[], plan: AggregationPlan): Promise<AggregateResult> {
    return aggregateReference(slots.map((s) => s.view), plan);
  }

  async close(): Promise<void> {}
}

export class MemoryCheckpointStore implements CheckpointStore {
  readonly files = new Map<string, CheckpointPayload>();
  private readonly damaged = new Set<string>();

  async write(payload: CheckpointPayload) {
    const sha256 = createHash('sha256').update(new Uint8Array(payload.params.buffer, payload.params.byteOffset, payload.params.byteLength)).update(`${payload.sessionId}/${payload.round}`).digest('hex');
    const path = `/mem/${sha256}.ckpt`;
    this.files.set(path, { ...payload, params: payload.params.slice(), optimizerState: payload.optimizerState.map((s) => s.slice()) });
    return { sha256, path, bytes: payload.params.byteLength };
  }

  async read(path: string, sha256: string): Promise<CheckpointPayload> {
    const payload = this.files.get(path);
    if (!payload || !path.includes(sha256)) throw new Error(`no checkpoint ${path}`);
    if (this.damaged.has(path)) throw new Error(`checkpoint ${path} has another sha256: the file is damaged`);
    return payload;
  }

  /** Makes reads of the file at path fail as a damaged file would. */
  damage(path: string): void {
    this.damaged.add(path);
  }

  async remove(path: string): Promise<boolean> {
    return this.files.delete(path);
  }

  async list(): Promise<{ sha256: string; path: string }[]> {
    return [...this.files.keys()].map((path) => ({ sha256: /\/mem\/([0-9a-f]+)\.ckpt$/.exec(path)![1], path }));
  }
}

export class ScriptedEvaluator implements Evaluator {
  readonly calls: Float32Array[] = [];
  closed = false;
  constructor(private readonly accuracyFor: (call: number) => number) {}

  async evaluate(params: Float32Array) {
    if (this.closed) throw new Error('evaluator closed');
    this.calls.push(params);
    const accuracy = this.accuracyFor(this.calls.length);
    return { loss: 1 - accuracy, accuracy, samples: 100 };
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

export class RecordingLink implements AgentLink {
  readonly json: CoordinatorMessage[] = [];
  readonly binary: Uint8Array[] = [];
  closed: { code: number; reason: string } | null = null;

  sendJson(message: CoordinatorMessage): void {
    this.json.push(message);
  }

  sendBinary(bytes: Uint8Array): void {
    this.binary.push(bytes);
  }

  close(code: number, reason: string): void {
    this.closed = { code, reason };
  }

  last<T extends CoordinatorMessage['type']>(type: T): Extract<CoordinatorMessage, { type: T }> | undefined {
    return [...this.json].reverse().find((m) => m.type === type) as Extract<CoordinatorMessage, { type: T }> | undefined;
  }

  all<T extends CoordinatorMessage['type']>(type: T): Extract<CoordinatorMessage, { type: T }>[] {
    return this.json.filter((m) => m.type === type) as Extract<CoordinatorMessage, { type: T }>[];
  }

  lastModel(): Float32Array {
    return decodeFrame(this.binary[this.binary.length - 1]).payload;
  }
}

/** Lets pending promise callbacks (repository writes, aggregation) run. */
export async function flush(times = 40): Promise<void> {
  for (let i = 0; i < times; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Deterministic node secrets for unit tests (sha256 still, so hashes look like the real ones). */
export function fakeCredentials(): import('../../src/server/core/ports').Credentials {
  let n = 0;
  return {
    issue: () => `test-token-${String(++n).padStart(8, '0')}`,
    hash: (token) => createHash('sha256').update(token).digest('hex'),
    seed: () => 12345,
  };
}
