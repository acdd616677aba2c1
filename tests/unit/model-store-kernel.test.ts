// The model store with the WebAssembly optimizer (what runtime.ts wires when the aggregator runs its SIMD
// backend) against the same store without it (core/optimizer.ts on the main thread): for Adam, SGD with momentum
// and the Nesterov outer step of local-steps sessions, the parameters, the optimizer state and the model frame's
// bytes are identical after every round. Also what recovery does: a checkpoint (snapshot) replayed through the
// reference and loaded back continues exactly, and a model frame encodes the parameters with their checksum.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checksum32, decodeFrame, FrameKind } from '../../src/protocol/frame';
import { createAggregatorPool } from '../../src/server/adapters/workers/aggregator-pool';
import type { AggregatorPool } from '../../src/server/adapters/workers/aggregator-pool-types';
import { createWasmOptimizerKernels, wasmOptimizerKernels, WORKER_STEP_MIN_PARAMS } from '../../src/server/adapters/workers/resident-optimizer';
import { strategyFor } from '../../src/server/core/engine/strategy';
import type { ModelCatalog, OptimizerKernels } from '../../src/server/core/ports';
import { DEFAULT_SESSION_CONFIG } from '../../src/server/core/session-config';
import { DEFAULT_OPTIMIZER, type SessionConfig } from '../../src/server/core/types';
import { ModelStore } from '../../src/server/services/model-store';
import { randomInputs } from '../support/random';

const P = 5_003;

const catalog: ModelCatalog = {
  paramCount: () => P,
  initialParams: (_model, seed) => randomInputs(1, P, seed)[0].map((x) => x * 0.01),
};

const configs: [string, SessionConfig][] = [
  ['adam', { ...DEFAULT_SESSION_CONFIG, optimizer: DEFAULT_OPTIMIZER.adam }],
  ['sgd with momentum', { ...DEFAULT_SESSION_CONFIG, optimizer: DEFAULT_OPTIMIZER.sgd }],
  ['local steps (Nesterov outer)', { ...DEFAULT_SESSION_CONFIG, optimizer: DEFAULT_OPTIMIZER.adam, localSteps: 8 }],
];

function sameBits(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function aggregates(rounds: number, seed: number): Float32Array[] {
  return randomInputs(rounds, P, seed).map((g) => g.map((x, i) => x * 10 ** ((i % 7) - 5)));
}

function run(store: ModelStore, sessionId: number, updates: Float32Array[], firstRound = 1): Uint8Array[] {
  return updates.map((g, k) => {
    const round = firstRound + k;
    store.holdAggregate(sessionId, round, g.slice());
    store.apply(sessionId, round);
    return store.modelFrame(sessionId, round + 1, store.model!.modelVersion);
  });
}

describe('model store with the WebAssembly optimizer', () => {
  // Staged steps run on the aggregator's real worker threads, as runtime.ts wires them.
  let pool: AggregatorPool;
  beforeAll(async () => {
    pool = await createAggregatorPool({ backend: 'wasm', workers: 2 });
  });
  afterAll(() => pool?.close());

  for (const [name, config] of configs) {
    it(`${name}: the kernel's model, state and frames are the reference's bytes, round after round`, () => {
      const kernel = new ModelStore(catalog, wasmOptimizerKernels);
      const js = new ModelStore(catalog);
      kernel.init(1, config);
      js.init(1, config);
      expect(kernel.engine).toBe('kernel');
      expect(js.engine).toBe('js');
      const updates = aggregates(6, name.length);
      const kernelFrames = run(kernel, 1, updates);
      const jsFrames = run(js, 1, updates);
      kernelFrames.forEach((f, k) => expect(Buffer.from(f).equals(Buffer.from(jsFrames[k])), `model frame after round ${k + 1}`).toBe(true));
      const a = kernel.snapshot(1);
      const b = js.snapshot(1);
      expect(a.modelVersion).toBe(6);
      expect(a.optimizer.step).toBe(b.optimizer.step);
      expect(sameBits(a.params, b.params)).toBe(true);
      a.optimizer.slots.forEach((s, i) => expect(sameBits(s, b.optimizer.slots[i]), `slot ${i}`).toBe(true));
      // The model moved, and the frame carries it with its checksum.
      const { header, payload } = decodeFrame(kernelFrames[5]);
      expect(header).toMatchObject({ kind: FrameKind.Model, sessionId: 1, round: 7, modelVersion: 6, checksum: checksum32(new Uint32Array(a.params.buffer)) });
      expect(sameBits(payload, a.params)).toBe(true);
      expect(sameBits(a.params, catalog.initialParams('mlp', config.seed))).toBe(false);
    });
  }

  it('recovery: a snapshot replayed through the reference (as recovery.ts does) and loaded continues as if never interrupted', () => {
    const config = configs[0][1];
    const updates = aggregates(8, 3);
    const live = new ModelStore(catalog, wasmOptimizerKernels);
    live.init(4, config);
    run(live, 4, updates.slice(0, 3));
    const checkpoint = live.snapshot(4);
    run(live, 4, updates.slice(3));

    // The journal's entries after the checkpoint, replayed through Strategy.applyAggregate on the checkpoint's arrays.
    const strategy = strategyFor(config);
    const recovered = { ...checkpoint, params: checkpoint.params.slice(), optimizer: { step: checkpoint.optimizer.step, slots: checkpoint.optimizer.slots.map((s) => s.slice()) } };
    for (const g of updates.slice(3, 6)) {
      strategy.applyAggregate(recovered.optimizer, recovered.params, g);
      recovered.modelVersion += 1;
    }
    const restarted = new ModelStore(catalog, wasmOptimizerKernels);
    restarted.load(recovered, config);
    expect(restarted.engine).toBe('kernel');
    run(restarted, 4, updates.slice(6), 7);
    const a = live.snapshot(4);
    const b = restarted.snapshot(4);
    expect(b.modelVersion).toBe(a.modelVersion);
    expect(sameBits(b.params, a.params)).toBe(true);
    b.optimizer.slots.forEach((s, i) => expect(sameBits(s, a.optimizer.slots[i]), `slot ${i}`).toBe(true));
  });

  it('recovery from the initial model: the reference replays onto the kernel-resident arrays init() handed out', () => {
    const config = configs[2][1];
    const updates = aggregates(4, 8);
    const live = new ModelStore(catalog, wasmOptimizerKernels);
    live.init(2, config);
    run(live, 2, updates);
    const restarted = new ModelStore(catalog, wasmOptimizerKernels);
    restarted.init(2, config);
    const model = restarted.model!;
    const strategy = strategyFor(config);
    for (const g of updates) {
      strategy.applyAggregate(model.optimizer, model.params, g);
      model.modelVersion += 1;
    }
    restarted.load(model, config); // what control.ts does with the recovered model: load it back
    expect(sameBits(restarted.model!.params, live.model!.params)).toBe(true);
    expect(restarted.modelFrame(2, 5, 4)).toEqual(live.modelFrame(2, 5, 4));
  });

  it('keeps the reference for state of another shape than the rule, for kernels that decline a rule, and when the kernel has no memory', () => {
    const config = configs[0][1];
    const store = new ModelStore(catalog, wasmOptimizerKernels);
    store.load({ sessionId: 3, modelVersion: 0, params: new Float32Array(P), optimizer: { step: 0, slots: [new Float32Array(P)] } }, config);
    expect(store.engine).toBe('js');
    const declining: OptimizerKernels = { create: () => null };
    const other = new ModelStore(catalog, declining);
    other.init(3, config);
    expect(other.engine).toBe('js');
    const failing: OptimizerKernels = {
      create: () => {
        throw new RangeError('WebAssembly.Memory(): could not allocate memory');
      },
    };
    const third = new ModelStore(catalog, failing);
    third.init(3, config);
    expect(third.engine).toBe('js');
  });

  it('prepareFrame readies a buffer modelFrame fills, and a frame already handed out is never written again', () => {
    const config = configs[0][1];
    const store = new ModelStore(catalog, wasmOptimizerKernels);
    const plain = new ModelStore(catalog);
    store.init(5, config);
    plain.init(5, config);
    const [g1, g2] = aggregates(2, 21);
    store.holdAggregate(5, 1, g1);
    store.prepareFrame(5);
    store.apply(5, 1);
    const first = store.modelFrame(5, 2, 1);
    const firstCopy = first.slice();
    expect(store.modelFrame(5, 2, 1)).toBe(first); // one encoding per round, the same bytes to every socket
    store.holdAggregate(5, 2, g2);
    store.prepareFrame(5);
    store.apply(5, 2);
    const second = store.modelFrame(5, 3, 2);
    expect(second.buffer).not.toBe(first.buffer);
    expect(Buffer.from(first).equals(Buffer.from(firstCopy)), 'the frame a slow socket may still be sending').toBe(true);
    plain.holdAggregate(5, 1, g1);
    plain.apply(5, 1);
    plain.holdAggregate(5, 2, g2);
    plain.apply(5, 2);
    expect(Buffer.from(second).equals(Buffer.from(plain.modelFrame(5, 3, 2)))).toBe(true);
    expect(decodeFrame(second).header.modelVersion).toBe(2);
  });

  for (const [name, config] of configs) {
    it(`${name}: a step staged on an aggregator worker while the commit runs publishes the in-place step's bytes, and nothing before apply`, async () => {
      let onWorker = 0;
      const staged = new ModelStore(
        catalog,
        createWasmOptimizerKernels((job) => {
          onWorker++;
          return pool.runOptimizerStep!(job);
        }, { workerMinParams: 0 }),
      );
      const js = new ModelStore(catalog);
      staged.init(6, config);
      js.init(6, config);
      const updates = aggregates(5, 40 + name.length);
      const jsFrames = run(js, 6, updates);
      for (const [k, g] of updates.entries()) {
        const round = k + 1;
        const before = staged.snapshot(6);
        const frameBefore = staged.modelFrame(6, round, k).slice();
        staged.holdAggregate(6, round, g.slice());
        staged.prepareFrame(6);
        const step = staged.stage(6, round);
        expect(staged.snapshot(6).params).toEqual(before.params); // while the worker runs, too
        await step;
        await staged.whenStaged(6, round);
        // Staged, not published: version, parameters, state and the current round's frame are still the old model.
        const during = staged.snapshot(6);
        expect(during.modelVersion).toBe(k);
        expect(during.optimizer.step).toBe(before.optimizer.step);
        expect(sameBits(during.params, before.params), `params while round ${round} is staged`).toBe(true);
        during.optimizer.slots.forEach((s, i) => expect(sameBits(s, before.optimizer.slots[i]), `slot ${i} while staged`).toBe(true));
        expect(Buffer.from(staged.modelFrame(6, round, k)).equals(Buffer.from(frameBefore))).toBe(true);
        expect(staged.paramsCopy(6).params).toEqual(before.params);
        staged.apply(6, round);
        const frame = staged.modelFrame(6, round + 1, round);
        expect(Buffer.from(frame).equals(Buffer.from(jsFrames[k])), `model frame after staged round ${round}`).toBe(true);
      }
      expect(onWorker).toBe(updates.length);
      const a = staged.snapshot(6);
      const b = js.snapshot(6);
      expect(a.optimizer.step).toBe(b.optimizer.step);
      expect(sameBits(a.params, b.params)).toBe(true);
      a.optimizer.slots.forEach((s, i) => expect(sameBits(s, b.optimizer.slots[i]), `slot ${i}`).toBe(true));
    });
  }

  it('a staged step whose commit failed is dropped: the model is untouched and the next round steps from it', async () => {
    const config = configs[0][1];
    const store = new ModelStore(catalog, createWasmOptimizerKernels((job) => pool.runOptimizerStep!(job), { workerMinParams: 0 }));
    const plain = new ModelStore(catalog);
    store.init(7, config);
    plain.init(7, config);
    const [lost, g2, g3] = aggregates(3, 77);
    const before = store.snapshot(7);
    store.holdAggregate(7, 1, lost);
    const dropped = store.stage(7, 1);
    store.discard(1); // what the runner does on commit-failed, here while the worker still runs the step
    await dropped;
    const after = store.snapshot(7);
    expect(after.modelVersion).toBe(0);
    expect(sameBits(after.params, before.params)).toBe(true);
    after.optimizer.slots.forEach((s, i) => expect(sameBits(s, before.optimizer.slots[i])).toBe(true));
    // A stale staged step is never published: round 2 staged, then round 3 applied without staging, and so on.
    store.holdAggregate(7, 2, g2);
    await store.stage(7, 2);
    store.apply(7, 2);
    store.holdAggregate(7, 3, g3);
    void store.stage(7, 3); // not awaited: apply steps in place and the late result is never published
    store.apply(7, 3);
    plain.holdAggregate(7, 2, g2);
    plain.apply(7, 2);
    plain.holdAggregate(7, 3, g3);
    plain.apply(7, 3);
    expect(Buffer.from(store.modelFrame(7, 4, 2)).equals(Buffer.from(plain.modelFrame(7, 4, 2)))).toBe(true);
    expect(store.snapshot(7).optimizer.step).toBe(2);
    // And staging goes on from there: round 4 staged (after round 3's late step) equals the reference again.
    const [g4] = aggregates(1, 78);
    store.holdAggregate(7, 4, g4);
    await store.stage(7, 4);
    store.apply(7, 4);
    plain.holdAggregate(7, 4, g4);
    plain.apply(7, 4);
    expect(Buffer.from(store.modelFrame(7, 5, 3)).equals(Buffer.from(plain.modelFrame(7, 5, 3)))).toBe(true);
  });

  it('a staged step that cannot run (a crashed worker) leaves apply to step in place, with the same bytes', async () => {
    const config = configs[1][1];
    const store = new ModelStore(catalog, createWasmOptimizerKernels(() => Promise.reject(new Error('aggregator worker 0 crashed')), { workerMinParams: 0 }));
    const plain = new ModelStore(catalog);
    store.init(8, config);
    plain.init(8, config);
    for (const [k, g] of aggregates(3, 90).entries()) {
      store.holdAggregate(8, k + 1, g.slice());
      await store.stage(8, k + 1); // resolves: only a head start
      store.apply(8, k + 1);
      plain.holdAggregate(8, k + 1, g);
      plain.apply(8, k + 1);
      expect(Buffer.from(store.modelFrame(8, k + 2, k + 1)).equals(Buffer.from(plain.modelFrame(8, k + 2, k + 1)))).toBe(true);
    }
  });

  it('a model under WORKER_STEP_MIN_PARAMS stages on the calling thread, even with workers at hand (the handoff would cost more)', async () => {
    let onWorker = 0;
    const store = new ModelStore(
      catalog,
      createWasmOptimizerKernels((job) => {
        onWorker++;
        return pool.runOptimizerStep!(job);
      }),
    );
    const plain = new ModelStore(catalog);
    store.init(9, configs[0][1]);
    plain.init(9, configs[0][1]);
    const [g] = aggregates(1, 91);
    store.holdAggregate(9, 1, g.slice());
    await store.stage(9, 1);
    store.apply(9, 1);
    plain.holdAggregate(9, 1, g);
    plain.apply(9, 1);
    expect(P).toBeLessThan(WORKER_STEP_MIN_PARAMS);
    expect(onWorker).toBe(0);
    expect(Buffer.from(store.modelFrame(9, 2, 1)).equals(Buffer.from(plain.modelFrame(9, 2, 1)))).toBe(true);
  });
});
