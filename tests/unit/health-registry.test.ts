// HealthRegistry (services/health.ts): what /health reports, and what a report costs when it is asked for in a
// loop. Probes here count their calls; the clock is a number the test moves.
import { describe, expect, it } from 'vitest';
import { HealthRegistry, REPORT_MAX_AGE_MS } from '../../src/server/services/health';

function setup() {
  let now = 1_000;
  const registry = new HealthRegistry(() => now);
  let calls = 0;
  let status: 'up' | 'down' = 'up';
  let release: (() => void) | null = null;
  let slow = false;
  registry.register('database', {
    required: true,
    check: async () => {
      calls++;
      if (slow) await new Promise<void>((resolve) => (release = resolve));
      return { status, detail: null };
    },
  });
  return {
    registry,
    calls: () => calls,
    advance: (ms: number) => (now += ms),
    set: (s: 'up' | 'down') => (status = s),
    slow: (on: boolean) => (slow = on),
    release: () => release?.(),
  };
}

describe('HealthRegistry', () => {
  it('answers checks within REPORT_MAX_AGE_MS from the last report, then probes again', async () => {
    const h = setup();
    expect((await h.registry.check()).status).toBe('ok');
    h.set('down');
    h.advance(REPORT_MAX_AGE_MS - 1);
    for (let i = 0; i < 100; i++) expect((await h.registry.check()).status).toBe('ok');
    expect(h.calls()).toBe(1);
    h.advance(1);
    expect((await h.registry.check()).status).toBe('down');
    expect(h.calls()).toBe(2);
  });

  it('runs one probe for checks that arrive while it runs', async () => {
    const h = setup();
    h.slow(true);
    const reports = Array.from({ length: 20 }, () => h.registry.check());
    await Promise.resolve();
    h.release();
    const summaries = await Promise.all(reports);
    expect(h.calls()).toBe(1);
    expect(new Set(summaries).size).toBe(1);
  });

  it('does not keep a report whose check started before a component was registered', async () => {
    const h = setup();
    h.slow(true);
    const early = h.registry.check();
    await Promise.resolve();
    h.registry.register('chain', { required: false, check: () => ({ status: 'up', detail: null }) });
    h.release();
    expect((await early).components.map((c) => c.name)).toEqual(['database']);
    h.slow(false);
    expect((await h.registry.check()).components.map((c) => c.name)).toEqual(['database', 'chain']);
  });

  it('does not answer from a report made before a component was registered', async () => {
    const h = setup();
    await h.registry.check();
    h.registry.register('chain', { required: false, check: () => ({ status: 'down', detail: 'RPC unreachable' }) });
    const report = await h.registry.check();
    expect(report.status).toBe('degraded');
    expect(report.components.map((c) => c.name)).toEqual(['database', 'chain']);
  });
});
