// Aggregation: the sample-weighted mean of N updates of P float32 through the real aggregator pool, counted
// from received frames (decodeFrameInto into pool slots, then pool.weightedMean), against, in the same run:
//   - a WebAssembly SIMD read-only pass over the same number of bytes (the read ceiling, one thread),
//   - numpy's in-place `acc += a` then `acc *= 1/N` (python3 subprocess),
// and the robust rules through the same pool (pool.aggregate: the WebAssembly kernels of robust.wat, each
// including the per-update distance-from-aggregate pass the coordinator records as an outlier score) for a
// 10% trimmed mean, the median and Multi-Krum (f = 2, m = N - f), at N = 10 and 100, P = 1M (and N = 10, P = 10M),
// against numpy's np.median and its sort-based trimmed mean (np.sort on axis 0, slice, mean) on the same inputs,
// and, at N = 10, P = 1M, the JS references in src/server/core/aggregation.ts.
// GB/s = bytes of all N inputs (N * P * 4) / median time, so every rate is comparable with the ceiling.
//   npm run bench -- aggregation            (about a minute; --quick: P = 1M only)
import { spawnSync } from 'node:child_process';
import { runInNewContext } from 'node:vm';
import v8 from 'node:v8';
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { coordinateMedianInto, trimmedMeanInto } from '../src/server/core/aggregation';
import { decodeFrameInto, encodeFrame, FrameKind, inspectPayload, type FrameHeader } from '../src/protocol/frame';
import { createAggregatorPool } from '../src/server/adapters/workers/aggregator-pool';
import type { AggregationPlan } from '../src/server/core/ports';
import { DEFAULT_SESSION_CONFIG } from '../src/server/core/session-config';
import { compileWeightedSum, instantiateWeightedSum, KERNEL_ALIGN_BYTES, WASM_PAGE_BYTES } from '../src/workers/kernels/weighted-sum-kernel';
import { atLeast, below, fmt, fmtMs, median, row, timeRuns, type BenchOptions, type BenchOutcome, type Benchmark, type Row } from './lib/common';

interface Config {
  n: number;
  p: number;
  reps: number;
  warmup: number;
}

/** Distinct input vectors per configuration: N = 100 cycles over 10 frames (each frame still lands in its own slot). */
const DISTINCT = 10;
/** The most one WebAssembly.Memory holds (65536 pages of 64 KiB), less a page. */
const CEILING_MAX_BYTES = 65535 * 65536;

function collectGarbage(): void {
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as (() => void) | undefined;
    gc?.();
  } catch {
    // no gc available: memory is released whenever V8 gets to it
  }
}

function fillInput(view: Float32Array, j: number): void {
  for (let i = 0; i < view.length; i++) view[i] = ((((Math.imul(i, 2654435761) >>> 0) + j * 40503) % 2001) / 1000 - 1) * 1e-3;
}

// ------------------------------------------------------------------ numpy

const NUMPY_SCRIPT = `
import json, sys, time
import numpy as np
n, p, k, reps, robust = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == '1'
base = [np.random.default_rng(j).standard_normal(p, dtype=np.float32) * np.float32(1e-3) for j in range(min(n, k))]
xs = [base[j % len(base)].copy() for j in range(n)]  # n distinct arrays, like n slots
del base
acc = np.empty(p, dtype=np.float32)
scale = np.float32(1.0 / n)
def mean():
    acc.fill(0)
    for a in xs:
        np.add(acc, a, out=acc)  # acc += a, in place
    np.multiply(acc, scale, out=acc)
def timed(fn, reps, warm=2):
    for _ in range(warm): fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter(); fn(); times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    return times[len(times) // 2]
out = {"numpy": np.__version__, "meanMs": timed(mean, reps)}
if robust:
    stack = np.stack(xs)
    out["medianMs"] = timed(lambda: np.median(stack, axis=0), max(3, reps // 3), 1)
    drop = int(0.1 * n)
    out["trimmedMs"] = timed(lambda: np.sort(stack, axis=0)[drop:n - drop].mean(axis=0), max(3, reps // 3), 1)
print(json.dumps(out))
`;

interface NumpyResult {
  numpy: string;
  meanMs: number;
  medianMs?: number;
  trimmedMs?: number;
}

function runNumpy(c: Config, robust: boolean): NumpyResult | { error: string } {
  const result = spawnSync('python3', ['-c', NUMPY_SCRIPT, String(c.n), String(c.p), String(DISTINCT), String(c.reps), robust ? '1' : '0'], {
    encoding: 'utf8',
    timeout: 300_000,
  });
  if (result.error) return { error: result.error.message };
  if (result.status !== 0) return { error: (result.stderr || `exit ${result.status}`).trim().split('\n').pop() ?? 'failed' };
  try {
    return JSON.parse(result.stdout.trim()) as NumpyResult;
  } catch {
    return { error: `unexpected output: ${result.stdout.slice(0, 200)}` };
  }
}

// ------------------------------------------------------------------ read ceiling

/**
 * Reads its share of the buffers with the kernel's read_sum, once per 'go' message, and answers when done.
 * CommonJS source for an eval'd worker: the kernel arrives compiled and the memory shared, nothing to import.
 */
const READER_WORKER = `
const { parentPort } = require('node:worker_threads');
let kernel = null;
let job = null;
let sink = 0;
parentPort.on('message', (m) => {
  if (m.type === 'init') {
    kernel = new WebAssembly.Instance(m.module, { env: { memory: m.memory } }).exports;
    job = m;
    parentPort.postMessage({ type: 'ready' });
    return;
  }
  for (let j = 0; j < job.addresses.length; j++) sink += kernel.read_sum(job.addresses[j], job.p);
  parentPort.postMessage({ type: 'done', sink });
});
`;

interface Ceiling {
  /** One thread (this one). */
  oneThreadMs: number;
  /** As many threads as the pool has workers, each reading its share of the inputs. */
  poolThreadsMs: number;
  threads: number;
  distinctBytes: number;
}

/**
 * WebAssembly SIMD read-only pass over N * P floats in shared memory (the read ceiling), on one thread and on as
 * many threads as the pool uses. Reads N distinct buffers, like the pool's N slots (if N * P * 4 exceeds the
 * 4 GiB a memory can hold, it cycles over as many as fit). Large regions read slower than small ones on this
 * VM (TLB reach), so the ceiling covers the same amount of memory as the pool's slots.
 */
async function readCeiling(c: Config, threads: number): Promise<Ceiling> {
  const padded = Math.ceil((c.p * 4) / KERNEL_ALIGN_BYTES) * KERNEL_ALIGN_BYTES;
  const first = KERNEL_ALIGN_BYTES;
  const buffers = Math.max(1, Math.min(c.n, Math.floor((CEILING_MAX_BYTES - first) / padded)));
  const pages = Math.ceil((first + buffers * padded) / WASM_PAGE_BYTES);
  const module = compileWeightedSum();
  let memory: WebAssembly.Memory | null = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  const kernel = instantiateWeightedSum(module, memory);
  const addresses = Array.from({ length: c.n }, (_, j) => first + (j % buffers) * padded);
  for (let j = 0; j < buffers; j++) fillInput(new Float32Array(memory.buffer, first + j * padded, c.p), j);
  let sink = 0;
  const oneThread = await timeRuns(c.reps, c.warmup, () => {
    for (const address of addresses) sink += kernel.read_sum(address, c.p);
  });
  const workers = Array.from({ length: threads }, () => new Worker(READER_WORKER, { eval: true }));
  let poolThreads: number[] = [];
  try {
    const share = (k: number) => addresses.filter((_, j) => j % threads === k);
    await Promise.all(
      workers.map(
        (w, k) =>
          new Promise<void>((resolve, reject) => {
            w.once('message', () => resolve());
            w.once('error', reject);
            w.postMessage({ type: 'init', module, memory, addresses: share(k), p: c.p });
          }),
      ),
    );
    poolThreads = await timeRuns(c.reps, c.warmup, () =>
      Promise.all(
        workers.map(
          (w) =>
            new Promise<void>((resolve) => {
              w.once('message', (m: { sink: number }) => {
                sink += m.sink;
                resolve();
              });
              w.postMessage({ type: 'go' });
            }),
        ),
      ),
    );
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  if (Number.isNaN(sink)) throw new Error('read pass saw NaN');
  memory = null;
  return { oneThreadMs: median(oneThread), poolThreadsMs: median(poolThreads), threads, distinctBytes: buffers * padded };
}

// ------------------------------------------------------------------ the receive path, stage by stage

/**
 * Where one update's receive path spends its time (the coordinator's receiveFrame: decodeFrameInto into a pool
 * slot with the pool's inspection kernel, whose sum of squares is the norm check), and the JS fallback.
 */
async function receiveStages(frame: Uint8Array, p: number, reps: number): Promise<Record<string, number>> {
  const pool = await createAggregatorPool({ backend: 'wasm' });
  try {
    const slot = pool.acquire(p);
    const payload = frame.subarray(64);
    const slotBytes = new Uint8Array(slot.view.buffer, slot.view.byteOffset, slot.view.byteLength);
    let sink = 0;
    const stage = async (fn: () => void) => median(await timeRuns(reps, 2, fn));
    const result = {
      copyMs: await stage(() => slotBytes.set(payload)),
      inspectWasmMs: await stage(() => (sink += pool.inspect(slot).nonFinite)),
      inspectJsMs: await stage(() => (sink += inspectPayload(slot.view).nonFinite)),
      decodeFrameIntoMs: await stage(() => (sink += Math.sqrt(decodeFrameInto(frame, slot.view, () => pool.inspect(slot)).stats.sumSquares))),
    };
    if (Number.isNaN(sink)) throw new Error('NaN in the receive stages');
    pool.release(slot);
    return result;
  } finally {
    await pool.close();
  }
}

// ------------------------------------------------------------------ one configuration

interface ConfigResult {
  n: number;
  p: number;
  inputBytes: number;
  reps: number;
  wholeMs: number;
  decodeMs: number;
  meanMs: number;
  wholeTimes: number[];
  /** The faster of the one-thread and pool-thread read passes. */
  ceilingMs: number;
  ceiling: Ceiling;
  numpy: NumpyResult | { error: string };
  poolKernelMsPerCall: number;
  poolWallMsPerCall: number;
  trimmedMs?: number;
  medianMs?: number;
  /** pool.aggregate, median time per call (ms). */
  kernels?: { trimmedMs: number; medianMs: number; krumMs: number; meanWithDistancesMs: number; trim: number; krumF: number; reps: number };
}

interface RobustOptions {
  /** The robust kernels through pool.aggregate, and numpy's median / trimmed mean. */
  kernels: boolean;
  /** The JS references too (slow: about 30x the mean). */
  js: boolean;
  reps: number;
}

async function runConfig(c: Config, robustOptions: RobustOptions | null, log: (line: string) => void): Promise<ConfigResult> {
  const robust = robustOptions !== null;
  const inputBytes = c.n * c.p * 4;
  log(`aggregation: N = ${c.n}, P = ${c.p.toLocaleString('en-US')} (${fmt(inputBytes / 1e9, 2)} GB of input): numpy...`);
  // numpy first, while this process holds none of the big buffers (they are never needed at the same time).
  const numpy = runNumpy(c, robust);
  log(`  numpy ${'error' in numpy ? `skipped: ${numpy.error}` : `${fmtMs(numpy.meanMs)}`}; read ceiling...`);
  // The pool's default worker count (createAggregatorPool: min(2, cores)).
  const ceiling = await readCeiling(c, Math.min(2, os.availableParallelism()));
  const ceilingMs = Math.min(ceiling.oneThreadMs, ceiling.poolThreadsMs);
  collectGarbage();

  log(`  read ceiling ${fmtMs(ceiling.oneThreadMs)} on 1 thread, ${fmtMs(ceiling.poolThreadsMs)} on ${ceiling.threads}; frames and pool...`);
  const weights = Array.from({ length: c.n }, (_, j) => 100 + 37 * (j % 17));
  const frames: Uint8Array[] = [];
  {
    const source = new Float32Array(c.p);
    for (let j = 0; j < Math.min(DISTINCT, c.n); j++) {
      fillInput(source, j);
      frames.push(encodeFrame({ kind: FrameKind.Gradient, sessionId: 1, round: 1, nodeId: j + 1, attempt: 1, modelVersion: 0, sampleCount: weights[j], trainLoss: 2.3 }, source));
    }
  }
  // The product's pool with its defaults (min(2, cores) workers, the WebAssembly SIMD kernel).
  const pool = await createAggregatorPool({ backend: 'wasm' });
  try {
    const slots = Array.from({ length: c.n }, () => pool.acquire(c.p));
    const views = slots.map((s) => s.view);
    const decodeTimes: number[] = [];
    const meanTimes: number[] = [];
    const wholeTimes: number[] = [];
    let header: FrameHeader | null = null;
    const statsBefore = { calls: 0, kernelMs: 0, wallMs: 0 };
    for (let rep = 0; rep < c.warmup + c.reps; rep++) {
      if (rep === c.warmup) Object.assign(statsBefore, pool.stats());
      const t0 = performance.now();
      // As the coordinator receives an update: into its slot, inspected there by the pool's kernel, norm checked.
      for (let j = 0; j < c.n; j++) {
        const slot = slots[j];
        const decoded = decodeFrameInto(frames[j % frames.length], views[j], () => pool.inspect(slot));
        if (!(Math.sqrt(decoded.stats.sumSquares) < DEFAULT_SESSION_CONFIG.maxUpdateNorm)) throw new Error('update norm over the limit');
        header = decoded.header;
      }
      const t1 = performance.now();
      await pool.weightedMean(slots, weights);
      const t2 = performance.now();
      if (rep >= c.warmup) {
        decodeTimes.push(t1 - t0);
        meanTimes.push(t2 - t1);
        wholeTimes.push(t2 - t0);
      }
    }
    if (!header) throw new Error('no frame decoded');
    const after = pool.stats();
    const calls = after.calls - statsBefore.calls;
    const result: ConfigResult = {
      n: c.n,
      p: c.p,
      inputBytes,
      reps: c.reps,
      wholeMs: median(wholeTimes),
      decodeMs: median(decodeTimes),
      meanMs: median(meanTimes),
      wholeTimes,
      ceilingMs,
      ceiling,
      numpy,
      poolKernelMsPerCall: (after.kernelMs - statsBefore.kernelMs) / calls,
      poolWallMsPerCall: (after.wallMs - statsBefore.wallMs) / calls,
    };
    if (robustOptions) {
      const trim = Math.floor(0.1 * c.n);
      const krumF = 2;
      const reps = robustOptions.reps;
      log(`  robust rules (SIMD kernels through pool.aggregate, ${reps} runs each)...`);
      const timeRule = async (plan: AggregationPlan) => median(await timeRuns(reps, 1, () => pool.aggregate(slots, plan)));
      result.kernels = {
        trimmedMs: await timeRule({ rule: 'trimmed-mean', trim }),
        medianMs: await timeRule({ rule: 'median' }),
        krumMs: await timeRule({ rule: 'multi-krum', f: krumF, m: c.n - krumF }),
        meanWithDistancesMs: await timeRule({ rule: 'weighted-mean', weights }),
        trim,
        krumF,
        reps,
      };
      if (robustOptions.js) {
        log('  robust rules (JS references in core)...');
        const out = new Float32Array(c.p);
        result.trimmedMs = median(await timeRuns(5, 1, () => trimmedMeanInto(out, views, 0.1)));
        result.medianMs = median(await timeRuns(5, 1, () => coordinateMedianInto(out, views)));
      }
    }
    for (const slot of slots) pool.release(slot);
    log(`  decode + mean ${fmtMs(result.wholeMs)} (decode ${fmtMs(result.decodeMs)}, weightedMean ${fmtMs(result.meanMs)})`);
    return result;
  } finally {
    await pool.close();
    frames.length = 0;
    collectGarbage();
  }
}

function gbps(bytes: number, ms: number): number {
  return bytes / (ms * 1e6);
}

function rowsFor(r: ConfigResult): Row[] {
  const label = `N=${r.n} P=${r.p >= 1e6 ? `${r.p / 1e6}M` : r.p}`;
  const rows: Row[] = [];
  const wholeRate = gbps(r.inputBytes, r.wholeMs);
  const meanRate = gbps(r.inputBytes, r.meanMs);
  rows.push(
    row(
      `${label}: decode + weightedMean`,
      `${fmtMs(r.wholeMs)}, ${fmt(wholeRate)} GB/s`,
      wholeRate,
      'GB/s',
      '',
      undefined,
      `decode ${fmtMs(r.decodeMs)} + weightedMean ${fmtMs(r.meanMs)} (${fmt(meanRate)} GB/s alone)`,
    ),
  );
  if ('meanMs' in r.numpy) {
    const npRate = gbps(r.inputBytes, r.numpy.meanMs);
    const ratio = r.numpy.meanMs / r.wholeMs;
    rows.push(
      row(`${label}: vs numpy acc+=a (${fmt(npRate)} GB/s)`, `${fmt(ratio, 2)}x`, ratio, 'x', '>= 2x', atLeast(ratio, 2, 'x'), `weightedMean alone: ${fmt(r.numpy.meanMs / r.meanMs, 2)}x`),
    );
  } else {
    rows.push({ metric: `${label}: vs numpy`, measured: 'skipped', value: null, unit: 'x', target: '>= 2x', verdict: 'skipped', note: r.numpy.error });
  }
  const ceilingRate = gbps(r.inputBytes, r.ceilingMs);
  const share = r.ceilingMs / r.wholeMs;
  rows.push(
    row(
      `${label}: share of read ceiling (${fmt(ceilingRate)} GB/s, ${r.ceiling.oneThreadMs <= r.ceiling.poolThreadsMs ? '1 thread' : `${r.ceiling.threads} threads`})`,
      `${fmt(share * 100, 1)}%`,
      share * 100,
      '%',
      '>= 70%',
      atLeast(share * 100, 70, ' points'),
      `weightedMean alone: ${fmt((r.ceilingMs / r.meanMs) * 100, 0)}%`,
    ),
  );
  if (r.kernels) {
    const k = r.kernels;
    const np = 'meanMs' in r.numpy ? r.numpy : null;
    // The issue's target is set at N = 10, P = 1M; elsewhere the ratio is reported without a verdict.
    const targeted = r.n === 10 && r.p === 1_000_000;
    for (const [name, ms, npMs, npName] of [
      [`trimmed mean (trim ${k.trim} of ${r.n} each end)`, k.trimmedMs, np?.trimmedMs, 'sort + slice mean'],
      ['coordinate median', k.medianMs, np?.medianMs, 'np.median'],
      [`Multi-Krum (f = ${k.krumF}, m = ${r.n - k.krumF})`, k.krumMs, undefined, ''],
    ] as const) {
      const ratio = ms / r.meanMs;
      rows.push(
        row(
          `${label}: ${name}, SIMD kernels`,
          `${fmtMs(ms)} = ${fmt(ratio, 2)}x the mean`,
          ratio,
          'x mean',
          targeted ? '<= 3x the mean' : '',
          targeted ? (ratio <= 3 ? { verdict: 'met' } : below(ratio, 3, 'x')) : undefined,
          npMs !== undefined ? `numpy ${npName} ${fmtMs(npMs)} (${fmt(npMs / ms, 1)}x our time)` : name.startsWith('Multi') ? 'a pairwise-distance pass, then the mean of the kept fused with every update\'s distance from it' : undefined,
        ),
      );
    }
    const ratio = k.meanWithDistancesMs / r.meanMs;
    rows.push(
      row(
        `${label}: weighted mean + per-update distances (aggregate)`,
        `${fmtMs(k.meanWithDistancesMs)} = ${fmt(ratio, 2)}x the mean`,
        ratio,
        'x mean',
        '',
        undefined,
        'what the outlier score costs on top of weightedMean: one more read of every input',
      ),
    );
  }
  if (r.trimmedMs !== undefined && r.medianMs !== undefined) {
    for (const [name, ms, npMs] of [
      ['trimmed mean (10%)', r.trimmedMs, 'meanMs' in r.numpy ? r.numpy.trimmedMs : undefined],
      ['coordinate median', r.medianMs, 'meanMs' in r.numpy ? r.numpy.medianMs : undefined],
    ] as const) {
      const ratio = ms / r.meanMs;
      rows.push(
        row(
          `${label}: ${name}, JS reference`,
          `${fmtMs(ms)} = ${fmt(ratio, 1)}x the mean`,
          ratio,
          'x mean',
          '<= 3x the mean',
          ratio <= 3 ? { verdict: 'met' } : below(ratio, 3, 'x'),
          npMs !== undefined ? `numpy ${name === 'coordinate median' ? 'np.median' : 'sort + slice mean'} ${fmtMs(npMs)} (${fmt(npMs / ms, 2)}x the JS time)` : undefined,
        ),
      );
    }
  }
  return rows;
}

export const aggregation: Benchmark = {
  name: 'aggregation',
  title: 'Aggregation: decode + sample-weighted mean through the pool vs numpy and the read ceiling; robust rules vs the mean',
  inDefault: true,
  async run({ quick, log }: BenchOptions): Promise<BenchOutcome> {
    const configs: Config[] = quick
      ? [
          { n: 10, p: 1_000_000, reps: 7, warmup: 2 },
          { n: 100, p: 1_000_000, reps: 3, warmup: 1 },
        ]
      : [
          { n: 10, p: 1_000_000, reps: 21, warmup: 3 },
          { n: 10, p: 10_000_000, reps: 7, warmup: 2 },
          { n: 100, p: 1_000_000, reps: 9, warmup: 2 },
          { n: 100, p: 10_000_000, reps: 5, warmup: 1 },
        ];
    const notes: string[] = [
      'decode = what the coordinator does per received update: decodeFrameInto into the pool slot (header checks, one copy) with the pool\'s WebAssembly inspection pass (checksum, NaN/Inf count, sum of squares for the norm limit) on this thread; weightedMean = pool.weightedMean (WebAssembly SIMD kernel on the pool\'s worker threads + copy of the result out of shared memory).',
      'Read ceiling: the faster of a WebAssembly SIMD read-only pass (read_sum) over the same N x P floats in N distinct shared-memory buffers on one thread and on as many threads as the pool has workers (2). numpy: acc.fill(0); np.add(acc, a, out=acc) for each input; acc *= 1/N (unweighted; the pool applies per-input weights), over N distinct arrays.',
      'In the product, decoding runs as each update arrives (spread over the round); only weightedMean is on the round-closing critical path.',
      'Robust rules: pool.aggregate (worker threads, WebAssembly SIMD: a comparator network per 256-coordinate block for the trimmed mean and median, a pairwise-distance pass for Multi-Krum), each including the pass that measures every update\'s distance from the aggregate; ratios are against weightedMean alone at the same N and P. numpy: np.median(stack, axis=0) and np.sort(stack, axis=0)[k:N-k].mean(axis=0) over a stacked (N, P) float32 array (stacking not timed).',
    ];
    if (quick) notes.push('--quick: P = 1M only, few repetitions.');
    const results: ConfigResult[] = [];
    // Robust rules: at N = 10 and 100, P = 1M, and N = 10, P = 10M (N = 100, P = 10M would take minutes:
    // Multi-Krum's pairwise pass alone is N^2/2 x P).
    const robustFor = (c: Config): RobustOptions | null =>
      c.p === 1_000_000 || (c.n === 10 && !quick)
        ? { kernels: true, js: c.n === 10 && c.p === 1_000_000, reps: c.n === 10 ? (c.p === 1_000_000 ? 9 : 3) : 3 }
        : null;
    for (const c of configs) results.push(await runConfig(c, robustFor(c), log));
    // Where the receive path spends its time, per update, at the largest P measured.
    const p = Math.max(...configs.map((c) => c.p));
    const source = new Float32Array(p);
    fillInput(source, 1);
    const frame = encodeFrame({ kind: FrameKind.Gradient, sessionId: 1, round: 1, nodeId: 1, attempt: 1, modelVersion: 0, sampleCount: 128, trainLoss: 2.3 }, source);
    const stages = await receiveStages(frame, p, quick ? 3 : 7);
    const rows = results.flatMap(rowsFor);
    rows.push(
      row(
        `receive path per ${p / 1e6}M-param update`,
        `${fmtMs(stages.decodeFrameIntoMs)}, ${fmt(gbps(p * 4, stages.decodeFrameIntoMs))} GB/s`,
        stages.decodeFrameIntoMs,
        'ms',
        '',
        undefined,
        `copy into the slot ${fmtMs(stages.copyMs)} + WebAssembly inspection ${fmtMs(stages.inspectWasmMs)} (checksum, NaN/Inf, norm; the JS fallback inspectPayload takes ${fmtMs(stages.inspectJsMs)})`,
      ),
    );
    if (results.some((r) => 'error' in r.numpy)) notes.push('numpy baseline skipped where python3/numpy is missing (see the rows).');
    return {
      rows,
      notes,
      details: {
        distinctInputs: DISTINCT,
        configs: results,
        receiveStages: { paramCount: p, ...stages },
      },
    };
  },
};
