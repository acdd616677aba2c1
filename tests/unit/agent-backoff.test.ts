import { describe, expect, it } from 'vitest';
import { Backoff } from '../../src/agent/backoff';

const schedule = (b: Backoff, n: number) => Array.from({ length: n }, () => b.next());

describe('agent reconnect backoff', () => {
  it('doubles from 250 ms up to 10 s, with no jitter at the middle of the range', () => {
    const b = new Backoff({ minMs: 250, maxMs: 10_000, random: () => 0.5 });
    expect(schedule(b, 9)).toEqual([250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]);
  });

  it('jitters each delay to 75-125% of its base', () => {
    expect(schedule(new Backoff({ minMs: 250, maxMs: 10_000, random: () => 0 }), 3)).toEqual([188, 375, 750]);
    expect(schedule(new Backoff({ minMs: 250, maxMs: 10_000, random: () => 0.999999 }), 3)).toEqual([312, 625, 1250]);
    const b = new Backoff({ minMs: 250, maxMs: 10_000 });
    for (let i = 0; i < 100; i++) {
      const base = Math.min(250 * 2 ** Math.min(i, 6), 10_000);
      const d = b.next();
      expect(d).toBeGreaterThanOrEqual(Math.round(base * 0.75));
      expect(d).toBeLessThanOrEqual(Math.round(base * 1.25));
    }
  });

  it('starts over from the minimum after a reset', () => {
    const b = new Backoff({ minMs: 250, maxMs: 10_000, random: () => 0.5 });
    schedule(b, 5);
    b.reset();
    expect(schedule(b, 3)).toEqual([250, 500, 1000]);
  });

  it('refuses a schedule that would spin or never grow', () => {
    expect(() => new Backoff({ minMs: 0, maxMs: 10 })).toThrow(RangeError);
    expect(() => new Backoff({ minMs: 100, maxMs: 50 })).toThrow(RangeError);
    expect(() => new Backoff({ minMs: Number.NaN, maxMs: 50 })).toThrow(RangeError);
  });
});
