// The agent's simulated heterogeneity and misbehaviour, and the local agents npm start plans from the flags.
import { describe, expect, it } from 'vitest';
import { BLOW_UP_GAIN, BYZANTINE_GAIN, corruptUpdate, sendDelayMs, slowdownMs } from '../../src/agent/simulation';
import { planLocalAgents } from '../../src/server/local-agents';
import { rng } from '../support/random';

const norm = (v: Float32Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

describe('Byzantine updates', () => {
  const honest = () => Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 0.01);

  it('scale, sign-flip and blow-up keep the direction (or reverse it) at their gain times the length', () => {
    for (const [mode, k] of [['scale', BYZANTINE_GAIN], ['sign-flip', -BYZANTINE_GAIN], ['blow-up', BLOW_UP_GAIN]] as const) {
      const h = honest();
      const v = honest();
      corruptUpdate(v, mode);
      v.forEach((x, i) => expect(x).toBeCloseTo(k * h[i], 7));
    }
  });

  it('random is noise as long as BYZANTINE_GAIN honest updates, uncorrelated with the honest one', () => {
    const h = honest();
    const v = honest();
    corruptUpdate(v, 'random', rng(3));
    expect(norm(v)).toBeCloseTo(BYZANTINE_GAIN * norm(h), 4);
    const cos = v.reduce((s, x, i) => s + x * h[i], 0) / (norm(v) * norm(h));
    expect(Math.abs(cos)).toBeLessThan(0.15);
  });
});

describe('simulated speed and link', () => {
  it('idles so that work takes 1/speed as long', () => {
    expect(slowdownMs(10, 0.25)).toBeCloseTo(30, 9);
    expect(slowdownMs(10, 1)).toBe(0);
    expect(slowdownMs(10, undefined)).toBe(0);
  });

  it('holds an update for the latency plus its transfer at the simulated upload rate', () => {
    expect(sendDelayMs(1_000_000, { latencyMs: 40, uploadBytesPerSecond: 10e6 })).toBeCloseTo(140, 9);
    expect(sendDelayMs(1_000_000, undefined)).toBe(0);
  });
});

describe('planLocalAgents', () => {
  it('uniform: plain local agents; mixed: full, half and quarter speed in turn; Byzantine ones named as such', () => {
    expect(planLocalAgents(2).map((r) => [r.name, r.args])).toEqual([
      ['local-1', []],
      ['local-2', []],
    ]);
    const mixed = planLocalAgents(4, 'mixed', 3);
    expect(mixed.map((r) => r.name)).toEqual(['local-1', 'local-2', 'local-3', 'local-4', 'byzantine-1', 'byzantine-2', 'byzantine-3']);
    expect(mixed[2].args).toEqual(['--simulate-speed', '0.25', '--simulate-latency', '120', '--simulate-upload', '10000000']);
    expect(mixed[3].args).toEqual([]);
    expect(mixed.slice(4).map((r) => r.args[1])).toEqual(['sign-flip', 'scale', 'random']);
    // Without a mode, K agents take the modes the norm screen does not catch in turn; blow-up only when asked for.
    expect(planLocalAgents(0, 'uniform', 4).map((r) => r.args[1])).toEqual(['sign-flip', 'scale', 'random', 'sign-flip']);
    expect(planLocalAgents(0, 'uniform', 1, 'blow-up').map((r) => r.args)).toEqual([['--byzantine', 'blow-up']]);
    expect(planLocalAgents(0, 'uniform', 2, 'random').map((r) => r.args)).toEqual([
      ['--byzantine', 'random'],
      ['--byzantine', 'random'],
    ]);
  });
});
