// GET /metrics against the real server while its agent trains: Prometheus text that a parser reads, HELP and TYPE
// for every family, rounds_total rising between scrapes, nodes by status, process metrics; private with
// HYPERGPU_PRIVATE_READS.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, OPERATOR_HEADERS, startServer, waitForHttp, type ServerProcess } from '../support/server-process';
import { parsePrometheusText, sampleValue } from '../support/prometheus-text';

describe('GET /metrics', () => {
  let server: ServerProcess;
  const scrape = async (headers: Record<string, string> = {}) => {
    const res = await fetch(`${server.baseUrl}/metrics`, { headers });
    return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
  };

  beforeAll(async () => {
    server = await startServer(['--no-dashboard', '--no-session', '--nodes', '1']);
    await waitForHttp(`${server.baseUrl}/health`);
  });

  afterAll(async () => {
    expect(await server?.stop('SIGTERM')).toBe(0);
  });

  it('serves Prometheus text with HELP and TYPE, and rounds_total rises while the agent trains', async () => {
    const idle = await scrape();
    expect(idle.status).toBe(200);
    expect(idle.type).toMatch(/^text\/plain; version=0\.0\.4/);
    const before = parsePrometheusText(idle.text);
    expect(sampleValue(before, 'hypergpu_rounds_total')).toBe(0);

    const start = await fetch(`${server.baseUrl}/api/training/start`, {
      method: 'POST',
      headers: { ...OPERATOR_HEADERS, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'mlp', rounds: 100000, checkpointEvery: 5 }),
    });
    expect(start.status).toBe(201);
    const first = await eventually(
      async () => parsePrometheusText((await scrape()).text),
      (f) => (sampleValue(f, 'hypergpu_rounds_total') ?? 0) >= 6,
      120_000,
      'six rounds (a checkpoint) in /metrics',
    );
    const second = await eventually(
      async () => parsePrometheusText((await scrape()).text),
      (f) => sampleValue(f, 'hypergpu_rounds_total')! > sampleValue(first, 'hypergpu_rounds_total')!,
      60_000,
      'rounds_total to rise',
    );

    for (const [name, type] of [
      ['hypergpu_rounds_total', 'counter'],
      ['hypergpu_round_duration_seconds', 'histogram'],
      ['hypergpu_samples_per_second', 'gauge'],
      ['hypergpu_nodes', 'gauge'],
      ['hypergpu_session_updates', 'gauge'],
      ['hypergpu_checkpoints', 'gauge'],
      ['hypergpu_session_updates_rejected', 'gauge'],
      ['hypergpu_session_updates_clipped', 'gauge'],
      ['hypergpu_aggregation_seconds_total', 'counter'],
      ['hypergpu_aggregations_total', 'counter'],
      ['hypergpu_optimizer_steps_staged_total', 'counter'],
      ['hypergpu_settlements', 'gauge'],
      ['hypergpu_chain_up', 'gauge'],
      ['hypergpu_process_resident_memory_bytes', 'gauge'],
      ['hypergpu_process_cpu_seconds_total', 'counter'],
      ['hypergpu_worker_heap_used_bytes', 'gauge'],
      ['hypergpu_worker_heap_size_bytes', 'gauge'],
      ['hypergpu_worker_external_memory_bytes', 'gauge'],
    ]) {
      const family = second.get(name);
      expect(family, name).toBeDefined();
      expect(family!.type, name).toBe(type);
      expect(family!.help, name).toBeTruthy();
    }
    for (const family of second.values()) expect(family.type, `${family.name} has TYPE`).toBeDefined();
    const rounds = sampleValue(second, 'hypergpu_rounds_total')!;
    expect(sampleValue(second, 'hypergpu_round_duration_seconds_count')).toBe(rounds);
    expect(sampleValue(second, 'hypergpu_round_duration_seconds_bucket', { le: '+Inf' })).toBe(rounds);
    expect(sampleValue(second, 'hypergpu_samples_per_second')).toBeGreaterThan(0);
    const nodes = second.get('hypergpu_nodes')!.samples;
    expect(nodes.reduce((s, x) => s + x.value, 0)).toBe(1);
    expect(nodes.map((s) => s.labels.status).sort()).toEqual(['connecting', 'failed', 'idle', 'left', 'training']);
    expect(sampleValue(second, 'hypergpu_session_updates', { result: 'accepted' })).toBeGreaterThan(0);
    expect(sampleValue(second, 'hypergpu_session_updates', { result: 'rejected' })).toBeGreaterThanOrEqual(0);
    expect(sampleValue(second, 'hypergpu_checkpoints')).toBeGreaterThanOrEqual(1);
    // The server started its local chain (anvil): it answers; settlements are counted by status.
    expect(sampleValue(second, 'hypergpu_chain_up')).toBe(1);
    expect(sampleValue(second, 'hypergpu_settlements', { status: 'pending' })).toBeGreaterThanOrEqual(0);
    // Every committed round was aggregated in the workers (health probes aggregate a little too, hence >=).
    expect(sampleValue(second, 'hypergpu_aggregations_total')).toBeGreaterThanOrEqual(rounds);
    expect(sampleValue(second, 'hypergpu_aggregation_seconds_total')).toBeGreaterThan(0);
    // Steps go to a worker only for models of 262,144 parameters and more (WORKER_STEP_MIN_PARAMS): none for the MLP.
    expect(sampleValue(second, 'hypergpu_optimizer_steps_staged_total')).toBe(0);
    // Rejections by reason sum to at most the session's rejected updates (the window is its last 1,000 rounds).
    const byReason = second.get('hypergpu_session_updates_rejected')!.samples;
    expect(byReason.reduce((sum, x) => sum + x.value, 0)).toBeLessThanOrEqual(sampleValue(second, 'hypergpu_session_updates', { result: 'rejected' })!);
  }, 240_000);

  it("shows each worker thread's own memory: the aggregator's kernels and the evaluator once it has started", async () => {
    // The evaluator starts with the session's first evaluation (every 10 rounds by default); once loaded it holds
    // tfjs and the MNIST test set (31 MB of pixels), which the process's own heap metrics do not include. Workers
    // report as they start and every 10 s.
    const held = (f: ReturnType<typeof parsePrometheusText>) =>
      (sampleValue(f, 'hypergpu_worker_heap_size_bytes', { worker: 'evaluator worker' }) ?? 0) + (sampleValue(f, 'hypergpu_worker_external_memory_bytes', { worker: 'evaluator worker' }) ?? 0);
    const families = await eventually(async () => parsePrometheusText((await scrape()).text), (f) => held(f) > 31e6, 120_000, 'the evaluator worker holding its test set in /metrics');
    const heaps = new Map(families.get('hypergpu_worker_heap_size_bytes')!.samples.map((s) => [s.labels.worker, s.value]));
    expect([...heaps.keys()]).toEqual(expect.arrayContaining(['aggregator worker 0', 'evaluator worker']));
    for (const [worker, bytes] of heaps) {
      expect(bytes, worker).toBeGreaterThan(1e6);
      expect(sampleValue(families, 'hypergpu_worker_heap_used_bytes', { worker }), worker).toBeLessThanOrEqual(bytes);
    }
  }, 180_000);

  it('answers POST with 405', async () => {
    const res = await fetch(`${server.baseUrl}/metrics`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(405);
  });
});

describe('GET /metrics with private reads', () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServer(['--no-dashboard', '--no-session', '--nodes', '0'], { env: { HYPERGPU_PRIVATE_READS: '1' } });
    // /health is private too: wait for any answer.
    await eventually(
      () => fetch(`${server.baseUrl}/health`).then((r) => r.status, () => 0),
      (status) => status > 0,
      120_000,
      'the server to listen',
    );
  });
  afterAll(async () => {
    expect(await server?.stop('SIGTERM')).toBe(0);
  });

  it('needs the operator credential', async () => {
    expect((await fetch(`${server.baseUrl}/metrics`)).status).toBe(401);
    const res = await fetch(`${server.baseUrl}/metrics`, { headers: OPERATOR_HEADERS });
    expect(res.status).toBe(200);
    expect(parsePrometheusText(await res.text()).get('hypergpu_rounds_total')?.type).toBe('counter');
  });
});
