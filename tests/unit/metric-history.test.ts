import { describe, expect, it } from 'vitest';
import type { MetricPoint } from '../../src/server/core/types';
import { MetricHistory } from '../../src/server/services/metric-history';

function point(round: number, extra: Partial<MetricPoint> = {}): MetricPoint {
  return {
    round,
    at: 1_764_000_000_000 + round * 37,
    trainLoss: 2.3 / round,
    testLoss: null,
    testAccuracy: null,
    samples: 256,
    totalSamples: 256 * round,
    samplesPerSecond: 5000.5 + round,
    roundDurationMs: 41.25,
    nodes: 2,
    ...extra,
  };
}

describe('MetricHistory (the live view\'s column ring)', () => {
  it('gives back every field as pushed, null test figures included', () => {
    const h = new MetricHistory(8);
    const pushed = [point(1), point(2, { testLoss: 0.31, testAccuracy: 0.912 }), point(3, { trainLoss: Number.NaN })];
    for (const p of pushed) h.push(p);
    expect(h.length).toBe(3);
    expect(h.lastRound()).toBe(3);
    expect(h.last(10)).toEqual(pushed);
    expect(h.last(2).map((m) => m.round)).toEqual([2, 3]);
    expect(h.last(0)).toEqual([]);
    // A round not above the last (an outbox redelivery) is refused and changes nothing.
    expect(h.push(point(3, { trainLoss: 9 }))).toBe(false);
    expect(h.push(point(2))).toBe(false);
    expect(h.last(10)).toEqual(pushed);
  });

  it('keeps the newest `capacity` points once it wraps, oldest first', () => {
    const h = new MetricHistory(5);
    for (let r = 1; r <= 13; r++) h.push(point(r));
    expect(h.length).toBe(5);
    expect(h.last(100).map((m) => m.round)).toEqual([9, 10, 11, 12, 13]);
    expect(h.last(100)[0]).toEqual(point(9));
    expect(h.lastRound()).toBe(13);
  });

  it('records an evaluation on the round it belongs to, across the wrap, and ignores rounds it does not hold', () => {
    const h = new MetricHistory(4);
    for (let r = 10; r <= 15; r++) h.push(point(r)); // holds 12..15, wrapped
    expect(h.setEvaluation(13, 0.25, 0.93)).toEqual(point(13, { testLoss: 0.25, testAccuracy: 0.93 }));
    expect(h.setEvaluation(11, 0.3, 0.9)).toBeNull(); // dropped from the window
    expect(h.setEvaluation(99, 0.3, 0.9)).toBeNull();
    expect(h.last(4).map((m) => m.testAccuracy)).toEqual([null, 0.93, null, null]);
    // A point reused by the ring after wrapping does not keep the old test figures.
    for (let r = 16; r <= 17; r++) h.push(point(r));
    expect(h.last(4).map((m) => [m.round, m.testLoss])).toEqual([[14, null], [15, null], [16, null], [17, null]]);
  });

  it('clears for a new session and refuses a capacity that is not a positive integer', () => {
    const h = new MetricHistory(3);
    h.push(point(1));
    h.clear();
    expect(h.length).toBe(0);
    expect(h.lastRound()).toBeNull();
    expect(h.last(5)).toEqual([]);
    expect(() => new MetricHistory(0)).toThrow(/positive integer/);
    expect(() => new MetricHistory(2.5)).toThrow(/positive integer/);
  });
});
