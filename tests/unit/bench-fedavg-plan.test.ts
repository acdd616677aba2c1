// The mapping of the FedAvg paper's client settings (E, B, n_k) onto a session's localSteps and batchSize, and the
// rounds-to-target reading of a metric history, that the fedavg benchmark reports beside the paper's figures.
import { describe, expect, it } from 'vitest';
import { firstRoundAtTarget, mapClientSetting, PAPER_CLIENT_SHARE } from '../../bench/lib/fedavg-plan';

describe('mapClientSetting', () => {
  it('maps FedAvg E=1 B=10 on the paper 600-sample share to 60 local steps of 10 (one pass over the share)', () => {
    expect(PAPER_CLIENT_SHARE).toBe(600);
    expect(mapClientSetting({ epochs: 1, batch: 10, share: 600 })).toEqual({ localSteps: 60, batchSize: 10, samplesPerNodeRound: 600 });
  });

  it('maps E=5 B=10 to five times the steps (u = E n_k / B)', () => {
    expect(mapClientSetting({ epochs: 5, batch: 10, share: 600 })).toEqual({ localSteps: 300, batchSize: 10, samplesPerNodeRound: 3000 });
    expect(mapClientSetting({ epochs: 20, batch: 50, share: 600 })).toEqual({ localSteps: 240, batchSize: 50, samplesPerNodeRound: 12_000 });
  });

  it('maps FedSGD (B = infinity) to one synchronous step on the whole share, whatever E', () => {
    expect(mapClientSetting({ epochs: 1, batch: null, share: 600 })).toEqual({ localSteps: 1, batchSize: 600, samplesPerNodeRound: 600 });
    expect(mapClientSetting({ epochs: 7, batch: null, share: 1200 })).toEqual({ localSteps: 1, batchSize: 1200, samplesPerNodeRound: 1200 });
  });

  it('refuses settings that are not a whole number of steps', () => {
    expect(() => mapClientSetting({ epochs: 1, batch: 7, share: 600 })).toThrow(/not a whole number of batches of 7/);
    expect(() => mapClientSetting({ epochs: 0, batch: 10, share: 600 })).toThrow(/epochs must be a positive integer/);
    expect(() => mapClientSetting({ epochs: 1, batch: 0, share: 600 })).toThrow(/batch must be a positive integer/);
    expect(() => mapClientSetting({ epochs: 1, batch: 10, share: 0 })).toThrow(/share must be a positive integer/);
  });
});

describe('firstRoundAtTarget', () => {
  const at = (round: number, testAccuracy: number | null) => ({ round, at: 1000 + round, testAccuracy });

  it('is the earliest evaluated round at or above the target, unevaluated rounds skipped', () => {
    const history = [at(5, 0.95), at(6, null), at(10, 0.9701), at(15, 0.969), at(20, 0.98)];
    expect(firstRoundAtTarget(history, 0.97)).toEqual(at(10, 0.9701));
    expect(firstRoundAtTarget([at(20, 0.97), at(10, 0.975)], 0.97)?.round).toBe(10);
  });

  it('is null when no evaluation reached the target', () => {
    expect(firstRoundAtTarget([at(5, 0.96), at(10, null)], 0.97)).toBeNull();
    expect(firstRoundAtTarget([], 0.97)).toBeNull();
  });
});
