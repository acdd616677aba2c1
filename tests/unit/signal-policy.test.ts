// Stop signals: the copy a wrapper relays is the same request; only a third, or a late one, forces the exit.
import { describe, expect, it } from 'vitest';
import { createSignalPolicy } from '../../src/server/core/signal-policy';

describe('signal policy', () => {
  it('takes the first signal as a request to shut down and a relayed copy as the same request', () => {
    const policy = createSignalPolicy();
    expect(policy.receive(1_000)).toBe('shutdown');
    expect(policy.receive(1_002)).toBe('duplicate');
  });

  it('forces the exit on the third signal, however soon', () => {
    const policy = createSignalPolicy();
    expect([policy.receive(0), policy.receive(1), policy.receive(2)]).toEqual(['shutdown', 'duplicate', 'force']);
  });

  it('forces the exit on a second signal after the grace period (the shutdown is stuck)', () => {
    const policy = createSignalPolicy(10_000);
    expect(policy.receive(0)).toBe('shutdown');
    expect(policy.receive(10_000)).toBe('duplicate');
    const late = createSignalPolicy(10_000);
    late.receive(0);
    expect(late.receive(10_001)).toBe('force');
  });
});
