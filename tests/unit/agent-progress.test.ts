import { describe, expect, it } from 'vitest';
import { ProgressMeter } from '../../src/agent/progress';

function clock(start = 1000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('agent progress and compute utilisation', () => {
  it('reports nothing until a round finished, then one line per interval', () => {
    const c = clock();
    const meter = new ProgressMeter(c.now);
    c.advance(10_000);
    expect(meter.takeLine()).toBeNull();
    // Two rounds of 1 s each, 800 ms of which computing, back to back; then 8 s idle.
    meter.recordRound({ startedAt: 1000, endedAt: 2000, computeMs: 800, samples: 128, loss: 2.5 });
    meter.recordRound({ startedAt: 2000, endedAt: 3000, computeMs: 800, samples: 128, loss: 2.25 });
    meter.recordRejected();
    expect(meter.takeLine()).toBe(
      '2 rounds, 256 samples in 10 s (26 samples/s), last loss 2.2500, 1 rejected; computing 16% of the time since start, 80% over the last 2 rounds',
    );
    c.advance(5000);
    expect(meter.takeLine()).toBeNull();
    // Updates the coordinator accepted clipped are counted in the interval they were reported in.
    meter.recordRound({ startedAt: 15_000, endedAt: 16_000, computeMs: 500, samples: 128, loss: 2 });
    meter.recordClipped();
    meter.recordClipped();
    expect(meter.takeLine()).toMatch(/last loss 2\.0000, 2 accepted clipped to the coordinator's norm limit; computing/);
    meter.recordRound({ startedAt: 16_000, endedAt: 17_000, computeMs: 500, samples: 128, loss: 2 });
    expect(meter.takeLine()).not.toMatch(/clipped/);
  });

  it('keeps a window of the last rounds, and counts since start across intervals', () => {
    const c = clock(0);
    const meter = new ProgressMeter(c.now, 20);
    // 10 slow rounds (10% busy), then 20 fast ones (50% busy): the window only sees the fast ones.
    let t = 0;
    for (let i = 0; i < 10; i++, t += 1000) meter.recordRound({ startedAt: t, endedAt: t + 1000, computeMs: 100, samples: 1, loss: 1 });
    for (let i = 0; i < 20; i++, t += 200) meter.recordRound({ startedAt: t, endedAt: t + 200, computeMs: 100, samples: 1, loss: 1 });
    c.advance(t);
    const u = meter.utilisation();
    expect(u.rounds).toBe(20);
    expect(u.recent).toBeCloseTo(0.5, 10);
    expect(u.sinceStart).toBeCloseTo(3000 / 14_000, 10);
    expect(meter.takeLine()).toMatch(/; computing 21% of the time since start, 50% over the last 20 rounds$/);
  });

  it('counts from restart(), not from construction', () => {
    const c = clock(0);
    const meter = new ProgressMeter(c.now);
    c.advance(60_000); // calibration, loading
    meter.restart();
    meter.recordRound({ startedAt: 60_000, endedAt: 61_000, computeMs: 900, samples: 64, loss: 0.5 });
    c.advance(1000);
    expect(meter.utilisation().sinceStart).toBeCloseTo(0.9, 10);
  });

  it('starts the recent window afresh for a new session: the gap between sessions is not idle time of either', () => {
    const meter = new ProgressMeter(clock(0).now);
    meter.recordRound({ startedAt: 0, endedAt: 1000, computeMs: 950, samples: 64, loss: 1 });
    meter.startWindow();
    // 30 s later, the next session's rounds: 95% busy each, back to back.
    meter.recordRound({ startedAt: 31_000, endedAt: 32_000, computeMs: 950, samples: 64, loss: 1 });
    meter.recordRound({ startedAt: 32_000, endedAt: 33_000, computeMs: 950, samples: 64, loss: 1 });
    expect(meter.utilisation().recent).toBeCloseTo(0.95, 10);
    expect(meter.utilisation().rounds).toBe(2);
  });
});
