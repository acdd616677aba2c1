// Norm clipping and outlier scores: the pure functions, and the engine recording them every round.
import { describe, expect, it } from 'vitest';
import { clipScales, MAX_OUTLIER_SCORE, outlierScores } from '../../src/server/core/engine/robust-scoring';
import { strategyFor } from '../../src/server/core/engine/strategy';
import { DEFAULT_SESSION_CONFIG } from '../../src/server/core/session-config';
import { nodeSnapshot } from '../../src/server/core/engine/views';
import { EngineDriver } from '../support/engine-driver';

describe('clipScales', () => {
  it('scales only updates longer than factor x the median norm, down to exactly that length', () => {
    const norms = [1, 2, 3, 4, 100];
    const scales = clipScales(norms, 2);
    expect(scales.slice(0, 4)).toEqual([1, 1, 1, 1]);
    expect(norms[4] * scales[4]).toBeCloseTo(6, 12);
  });

  it('a minority of huge updates cannot move the limit (the median), a majority can', () => {
    expect(clipScales([1, 1, 1, 1e9, 1e9], 3).map((s, i) => [1, 1, 1, 1e9, 1e9][i] * s)).toEqual([1, 1, 1, 3, 3]);
  });

  it('clips nothing for zero norms or an empty round', () => {
    expect(clipScales([], 2)).toEqual([]);
    expect(clipScales([0, 0, 0], 2)).toEqual([1, 1, 1]);
  });
});

describe('the plan’s scales: the session’s clipping and the engine’s relative limit together', () => {
  const update = (slot: number, norm: number, clipTo?: number) => ({ nodeId: slot, slot, samples: 10, norm, ...(clipTo === undefined ? {} : { clipTo }) });

  it('scales an update accepted over the relative limit down to it, with or without the session’s clipping', () => {
    const mean = strategyFor(DEFAULT_SESSION_CONFIG);
    expect(mean.aggregation([update(1, 1), update(2, 20, 10)]).scales).toEqual([1, 0.5]);
    expect(mean.aggregation([update(1, 1), update(2, 2)]).scales).toBeUndefined();
    // The session clips at 3x the round's median (1): the smaller scale wins, whichever limit gives it.
    const clipped = strategyFor({ ...DEFAULT_SESSION_CONFIG, clipFactor: 3 });
    expect(clipped.aggregation([update(1, 1), update(2, 1), update(3, 1), update(4, 20, 10)]).scales).toEqual([1, 1, 1, 3 / 20]);
    expect(clipped.aggregation([update(1, 1), update(2, 1), update(3, 1), update(4, 20, 2)]).scales).toEqual([1, 1, 1, 2 / 20]);
    // Robust rules get the same scales.
    const trimmed = strategyFor({ ...DEFAULT_SESSION_CONFIG, aggregation: { rule: 'trimmed-mean', trimFraction: 0.2 } });
    expect(trimmed.aggregation([update(1, 1), update(2, 1), update(3, 1), update(4, 20, 10)]).scales).toEqual([1, 1, 1, 0.5]);
  });
});

describe('outlierScores', () => {
  it('is each distance over the median distance', () => {
    expect(outlierScores([1, 2, 2, 4, 40])).toEqual([0.5, 1, 1, 2, 20]);
    expect(outlierScores([3, 1])).toEqual([1.5, 0.5]);
  });

  it('is null with nothing to compare against, and bounded for degenerate rounds', () => {
    expect(outlierScores([5])).toEqual([null]);
    expect(outlierScores([0, 0, 0, 2])).toEqual([0, 0, 0, MAX_OUTLIER_SCORE]);
    expect(outlierScores([1, 1, Infinity])).toEqual([1, 1, MAX_OUTLIER_SCORE]);
  });
});

describe('engine: clipping in the plan, scores in the ledger and on the node', () => {
  it('asks the runner to clip the long update, and records each node’s score with its contribution', () => {
    const d = new EngineDriver({ normRatio: 0 });
    d.start({ clipFactor: 2, aggregation: { rule: 'trimmed-mean', trimFraction: 0.2 }, minCompletion: 1 });
    d.hold.add('aggregate');
    for (let id = 1; id <= 5; id++) d.join(id);
    // Round 1 opened for node 1 alone: let it through, then everyone works round 2.
    d.deliver(1);
    d.release('aggregate');
    for (let id = 1; id <= 5; id++) d.sumSquaresOf.set(id, id === 5 ? 100 * 100 : 1);
    for (let id = 1; id <= 5; id++) d.deliver(id);
    const aggregate = d.held.find((e) => e.type === 'aggregate')!;
    expect(aggregate.type === 'aggregate' && aggregate.plan.scales).toEqual([1, 1, 1, 1, 2 / 100]);
    d.distancesFor = () => [1, 1.2, 0.8, 1, 9];
    d.release('aggregate');
    const commit = d.of('commit-round').at(-1)!;
    expect(commit.contributions.map((c) => c.outlierScore)).toEqual([1, 1.2, 0.8, 1, 9]);
    expect(nodeSnapshot(d.state, 5)!.outlierScore).toBe(9);
    expect(d.of('log').some((l) => l.message.includes('#5') && l.message.includes('9.0x'))).toBe(true);
  });

  it('asks for no clipping when the session has none', () => {
    const d = new EngineDriver({ normRatio: 0 });
    d.start({ minCompletion: 1 });
    d.join(1);
    d.sumSquaresOf.set(1, 1e6);
    d.deliver(1);
    expect(d.of('aggregate').at(-1)!.plan.scales).toBeUndefined();
  });
});
