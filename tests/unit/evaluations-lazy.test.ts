// The evaluator worker (tfjs + the test set: the coordinator's largest fixed memory) starts on a session's first
// evaluation, not when the session starts, and gets the one copy of the model the evaluation took.
import { describe, expect, it } from 'vitest';
import type { Evaluator } from '../../src/server/core/ports';
import { Evaluations } from '../../src/server/services/evaluations';
import type { ModelStore } from '../../src/server/services/model-store';

function setup() {
  const created: string[] = [];
  const seen: { params: Float32Array; transfer: boolean | undefined }[] = [];
  let closed = 0;
  const reports: unknown[] = [];
  const evaluator: Evaluator = {
    async evaluate(params, opts) {
      seen.push({ params, transfer: opts?.transfer });
      return { loss: 0.5, accuracy: 0.9, samples: 10 };
    },
    async close() {
      closed++;
    },
  };
  const model = { paramsCopy: () => ({ modelVersion: 3, params: new Float32Array([1, 2, 3]) }) } as unknown as ModelStore;
  const evaluations = new Evaluations({
    createEvaluator: async (m, dataset) => {
      created.push(`${m}/${dataset}`);
      return evaluator;
    },
    model,
    session: () => null,
    report: (_s, _p, result) => reports.push(result),
    log: () => {},
  });
  return { evaluations, created, seen, reports, closed: () => closed };
}

describe('Evaluations', () => {
  it('starts the evaluator on the first evaluation, once, and hands it the evaluation\'s own copy', async () => {
    const s = setup();
    s.evaluations.start(1, 'mlp', 'mnist');
    await new Promise((resolve) => setImmediate(resolve));
    expect(s.created).toEqual([]);
    await s.evaluations.evaluate(1, 10, 'periodic');
    await s.evaluations.evaluate(1, 20, 'periodic');
    expect(s.created).toEqual(['mlp/mnist']);
    expect(s.seen.map((e) => e.transfer)).toEqual([true, true]);
    expect(s.reports).toMatchObject([{ ok: true, round: 10 }, { ok: true, round: 20 }]);
    await s.evaluations.stop();
    expect(s.closed()).toBe(1);
  });

  it('never starts one for a session that ends before evaluating', async () => {
    const s = setup();
    s.evaluations.start(1, 'mlp', 'mnist');
    await s.evaluations.stop();
    s.evaluations.start(2, 'mlp', 'mnist');
    await s.evaluations.evaluate(1, 10, 'periodic');
    expect(s.created).toEqual([]);
    expect(s.reports).toMatchObject([{ ok: false, message: 'no evaluator for this session' }]);
  });
});
