// GET /health against a real runtime (real SQLite file, real aggregator worker threads, real HTTP): every
// component up answers 200; really breaking one the coordinator needs (closing the aggregator, which ends its
// worker threads) answers 503 naming it, while an optional one down only degrades it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime, type Runtime } from '../../src/server/runtime';
import { REPORT_MAX_AGE_MS } from '../../src/server/services/health';
import { tempDataDir, TEST_ADMIN_TOKEN } from '../support/server-process';

describe('GET /health', () => {
  let runtime: Runtime;
  let base: string;
  const health = async () => {
    const res = await fetch(`${base}/health`, { headers: { connection: 'close' } });
    return { status: res.status, body: (await res.json()) as any };
  };
  const component = (body: any, name: string) => body.components.find((c: any) => c.name === name);

  beforeAll(async () => {
    runtime = await createRuntime({
      dataDir: tempDataDir('hypergpu-health-'),
      heartbeatMs: 200,
      heartbeatTimeoutMs: 800,
      aggregatorWorkers: 1,
      log: () => undefined,
      security: { adminToken: TEST_ADMIN_TOKEN },
    });
    base = `http://127.0.0.1:${await runtime.listen(0, '127.0.0.1')}`;
  });

  afterAll(async () => {
    await runtime?.close().catch(() => undefined);
  });

  it('answers 200 with each component, the version and the uptime while everything works', async () => {
    const { status, body } = await health();
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'ok', version: expect.stringMatching(/^\d+\.\d+\.\d+/), state: 'idle' });
    expect(body.components.map((c: any) => c.name)).toEqual(['database', 'aggregator', 'evaluator', 'agent-channel', 'chain']);
    expect(component(body, 'database')).toMatchObject({ status: 'up', required: true });
    expect(component(body, 'aggregator')).toMatchObject({ status: 'up', required: true, detail: expect.stringMatching(/1 .* worker/) });
    expect(component(body, 'evaluator')).toMatchObject({ status: 'idle', required: false });
    expect(component(body, 'agent-channel')).toMatchObject({ status: 'up', required: true });
    // This runtime was built without a chain: settlement is planned in the ledger only, and says so.
    expect(component(body, 'chain')).toMatchObject({ status: 'idle', required: false, detail: expect.stringMatching(/no chain configured/) });
  });

  it('degrades when an optional component is down, and answers 503 when a needed one is', async () => {
    // The chain is not needed to train: when it does not answer, degraded, still 200 (its probe replaced by one
    // that reports what the real probe reports for an unreachable RPC).
    runtime.health.register('chain', { required: false, check: () => ({ status: 'down', detail: 'RPC unreachable' }) });
    const degraded = await health();
    expect(degraded).toMatchObject({ status: 200, body: { status: 'degraded' } });
    expect(component(degraded.body, 'chain')).toMatchObject({ status: 'down', detail: 'RPC unreachable' });

    // The aggregator's worker threads end when it closes: rounds cannot be aggregated, the coordinator is down.
    await runtime.aggregator.close();
    // A report answers for REPORT_MAX_AGE_MS (a public endpoint must not run the probes for every caller): the
    // outage shows in the first report made after that.
    await new Promise((resolve) => setTimeout(resolve, REPORT_MAX_AGE_MS + 50));
    const down = await health();
    expect(down.status).toBe(503);
    expect(down.body.status).toBe('down');
    expect(component(down.body, 'aggregator')).toMatchObject({ status: 'down', detail: expect.stringMatching(/closed/) });
    expect(component(down.body, 'database').status).toBe('up');
    // (Closing the database is no outage to break it with: Prisma reconnects on the next query.)
  });
});
