// What checking every API answer against its output schema costs (src/server/api/dto.ts), in-process, next to
// what serializing the same answer costs. Not part of `npm run bench` (it measures one function, not the
// system); run it by hand after changing the DTO schemas:
//   npx tsx bench/api-dto.ts
import type { IncomingMessage, ServerResponse } from 'node:http';
import { metricsReport, statusSnapshot } from '../src/server/api/dto';
import { handleRest } from '../src/server/api/rest';
import { appRouter } from '../src/server/api/root';
import { createCallerFactory } from '../src/server/api/trpc';
import type { StatusSnapshot } from '../src/server/core/events';
import type { MetricPoint, SessionSnapshot } from '../src/server/core/types';
import type { TrainingControl } from '../src/server/services/training-control';
import { ANONYMOUS } from '../src/server/core/operator-access';

const T0 = 1_800_000_000_000;
const session: SessionSnapshot = {
  id: 3,
  state: 'running',
  config: {
    model: 'mlp',
    dataset: 'mnist',
    optimizer: { name: 'sgd', learningRate: 0.05, momentum: 0.9, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 },
    batchSize: 64,
    maxRounds: null,
    targetAccuracy: null,
    evalEvery: 5,
    checkpointEvery: 10,
    seed: 1,
    roundTimeoutMs: 30_000,
    minUpdates: 1,
    minCompletion: 0.5,
    maxSamples: null,
    maxUpdateNorm: 1e6,
  },
  round: 1000,
  modelVersion: 998,
  epoch: 1,
  totalSamples: 256_000,
  startedAt: T0,
  endedAt: null,
  lastTestAccuracy: 0.91,
  lastTestLoss: 0.3,
  lastRoundDurationMs: 120,
  samplesPerSecond: 5000.5,
  message: null,
};
const status = (): StatusSnapshot => ({
  state: 'running',
  sessionId: 3,
  round: 1000,
  modelVersion: 998,
  nodes: { total: 4, active: 4, training: 2, failed: 0 },
  session: { ...session, config: { ...session.config } },
  startedAt: T0,
  now: T0 + 5000,
});
const points: MetricPoint[] = Array.from({ length: 1000 }, (_, i) => ({
  round: i + 1,
  at: T0 + i * 100,
  trainLoss: 0.5 + (i % 7) / 10,
  testLoss: i % 5 ? null : 0.3,
  testAccuracy: i % 5 ? null : 0.9,
  samples: 256,
  totalSamples: 256 * (i + 1),
  samplesPerSecond: 5000.25,
  roundDurationMs: 103,
  nodes: 4,
}));
const report = { sessionId: 3, round: 1000, loss: 0.5, accuracy: 0.9, testLoss: 0.3, samples: 256_000, samplesPerSecond: 5000, latest: points[999], history: points };
const control = {
  status,
  metrics: async (_sessionId?: number, limit = 10_000) => ({ latest: points.at(-1) ?? null, history: points.slice(-limit) }),
} as unknown as TrainingControl;

async function time(fn: () => unknown, iterations: number): Promise<number> {
  for (let i = 0; i < Math.ceil(iterations / 5); i++) await fn();
  const samples: number[] = [];
  for (let rep = 0; rep < 5; rep++) {
    const started = performance.now();
    for (let i = 0; i < iterations; i++) await fn();
    samples.push(((performance.now() - started) * 1000) / iterations);
  }
  return samples.sort((a, b) => a - b)[2];
}

const res = { setHeader() {}, writeHead() {}, end() {} } as unknown as ServerResponse;
// Anonymous callers: the reads measured here are public.
const caller = createCallerFactory(appRouter)({ control, caller: () => ANONYMOUS });
const access = { caller: () => ANONYMOUS, privateReads: false };
const rest = (url: string) => () => handleRest({ url, method: 'GET' } as IncomingMessage, res, control, T0, access);

const rows: [string, number][] = [
  ['status snapshot: statusSnapshot.parse', await time(() => statusSnapshot.parse(status()), 50_000)],
  ['status snapshot: JSON.stringify', await time(() => JSON.stringify(status()), 50_000)],
  ['GET /api/status through handleRest (no socket)', await time(rest('/api/status'), 50_000)],
  ['training.status through the tRPC caller', await time(() => caller.training.status(), 50_000)],
  ['1,000 metric points: metricsReport.parse', await time(() => metricsReport.parse(report), 500)],
  ['1,000 metric points: JSON.stringify', await time(() => JSON.stringify(report), 500)],
  ['GET /api/metrics (1,000 points) through handleRest', await time(rest('/api/metrics'), 500)],
];
console.log(`medians of 5 runs, µs per call (load average ${(await import('node:os')).loadavg().map((l) => l.toFixed(2)).join(' ')})`);
for (const [name, us] of rows) console.log(`${name.padEnd(52)} ${us.toFixed(2).padStart(9)}`);
