// Ingest: the sample-weighted mean of N updates counted from received frames (the receive copy, the checks and
// the aggregation itself), measured side by side in one run against numpy at its best on the same N x P:
//   - BLAS `w @ X` over the updates already stacked in one array (it receives, copies and checks nothing),
//   - np.average(X, axis=0, weights=w), and the streaming `acc += w * a`,
// for the coordinator's two paths:
//   - fold on arrival (mean-type rules, the product's path now): each frame checked and added into the round's
//     running sum in one fused WebAssembly SIMD pass (running-sum.ts, fold.wat), then one scaling pass;
//   - slots (robust rules, and every rule before): decodeFrameInto a slot + inspect, then pool.weightedMean.
// Frames are fresh buffers: each update of each repetition is a new ArrayBuffer the benchmark wrote before the
// timed part (as ws hands over a new buffer per message), never the same ten frames again, so no update is
// read from a cache a previous repetition warmed. Also the compute part of the round close at P = 1M and 10M,
// N = 100, through the model store (the WebAssembly optimizer on the resident model, and the JS fallback).
//   npm run bench -- ingest            (--quick: P = 1M only)
import { readFileSync } from 'node:fs';
import { decodeFrameInto, encodeFrame, FrameKind, checkStats, decodeHeader } from '../src/protocol/frame';
import { createAggregatorPool, type AggregatorPool } from '../src/server/adapters/workers/aggregator-pool';
import { FOLD_CHUNK_BYTES, type WasmRunningSum } from '../src/server/adapters/workers/running-sum';
import { createWasmOptimizerKernels, WORKER_STEP_MIN_PARAMS } from '../src/server/adapters/workers/resident-optimizer';

/** Where the model store stages the step for a model of `p` parameters (resident-optimizer.ts). */
function stepThread(p: number): string {
  return p >= WORKER_STEP_MIN_PARAMS ? 'on an aggregator worker' : `on the main thread (under ${WORKER_STEP_MIN_PARAMS.toLocaleString('en-US')} parameters a thread handoff costs more than the step saves)`;
}
import { DEFAULT_SESSION_CONFIG } from '../src/server/core/session-config';
import { ModelStore } from '../src/server/services/model-store';
import { createFileBlobStore } from '../src/server/adapters/blob-store';
import { createUpdateJournal } from '../src/server/adapters/journal/update-journal';
import { trackedTempDir, removeTempDir } from './lib/procs';
import { DEFAULT_OPTIMIZER, type SessionConfig } from '../src/server/core/types';
import { atLeast, below, fmt, fmtMs, loadAverage, median, row, type BenchOptions, type BenchOutcome, type Benchmark, type Row } from './lib/common';
import { describeBlas, numpyBaselines, type NumpyBaselines } from './lib/numpy-baselines';

interface Config {
  n: number;
  p: number;
  reps: number;
}

/** Fresh frame buffers alive at once, at most (they are written before, and dropped after, each batch). */
const FRESH_BYTES_LIMIT = 1 << 30;

function fillInput(view: Float32Array, j: number): void {
  for (let i = 0; i < view.length; i++) view[i] = ((((Math.imul(i, 2654435761) >>> 0) + j * 40503) % 2001) / 1000 - 1) * 1e-3;
}

function weightsFor(n: number): number[] {
  return Array.from({ length: n }, (_, j) => 100 + 37 * (j % 17));
}

/** Ten distinct source frames; every timed update is a fresh copy of one of them. */
function sourceFrames(c: Config): Uint8Array[] {
  const weights = weightsFor(c.n);
  const source = new Float32Array(c.p);
  return Array.from({ length: Math.min(10, c.n) }, (_, j) => {
    fillInput(source, j);
    return encodeFrame({ kind: FrameKind.Gradient, sessionId: 1, round: 1, nodeId: j + 1, attempt: 1, modelVersion: 0, sampleCount: weights[j], trainLoss: 2.3 }, source);
  });
}

/** Kernel counters that say whether memory itself stalled a timed part (Linux; empty elsewhere). */
function vmCounters(): Record<string, number> {
  try {
    const wanted = new Set(['pgfault', 'pgmajfault', 'compact_stall', 'thp_fault_alloc']);
    const out: Record<string, number> = {};
    for (const line of readFileSync('/proc/vmstat', 'utf8').split('\n')) {
      const [name, value] = line.split(' ');
      if (wanted.has(name)) out[name] = Number(value);
    }
    return out;
  } catch {
    return {};
  }
}

/**
 * This machine's rate of writing memory the process has never touched (each new page a fault the kernel, and on
 * a VM the host, must back) against memory already mapped: 256 MiB, memset, median of 3. Every received frame
 * arrives in a buffer of its own, so it pays the first on the socket side before we read a byte.
 */
function firstTouchGBps(): { fresh: number; mapped: number } {
  const bytes = 256 * 2 ** 20;
  const fresh: number[] = [];
  const mapped: number[] = [];
  for (let rep = 0; rep < 3; rep++) {
    const t0 = performance.now();
    const buffer = Buffer.allocUnsafeSlow(bytes);
    buffer.fill(1);
    const t1 = performance.now();
    buffer.fill(2);
    const t2 = performance.now();
    fresh.push(bytes / ((t1 - t0) * 1e6));
    mapped.push(bytes / ((t2 - t1) * 1e6));
  }
  return { fresh: median(fresh), mapped: median(mapped) };
}

function fresh(frame: Uint8Array): Uint8Array {
  const copy = new Uint8Array(new ArrayBuffer(frame.byteLength));
  copy.set(frame);
  return copy;
}

/**
 * Runs `fold(frame, j)` over N fresh frames per repetition (timed: only the calls), then `finish` (timed).
 * Fresh frames are written in batches under FRESH_BYTES_LIMIT, all of a batch before any is folded.
 */
async function timeFresh(c: Config, frames: Uint8Array[], start: () => void, fold: (frame: Uint8Array, j: number) => void, finish: () => Promise<unknown> | unknown): Promise<number[]> {
  const batch = Math.max(1, Math.min(c.n, Math.floor(FRESH_BYTES_LIMIT / frames[0].byteLength)));
  const times: number[] = [];
  const vmBefore = vmCounters();
  for (let rep = -1; rep < c.reps; rep++) {
    let ms = 0;
    start();
    for (let first = 0; first < c.n; first += batch) {
      const buffers = Array.from({ length: Math.min(batch, c.n - first) }, (_, k) => fresh(frames[(first + k) % frames.length]));
      const t0 = performance.now();
      buffers.forEach((b, k) => fold(b, first + k));
      ms += performance.now() - t0;
    }
    const t1 = performance.now();
    await finish();
    ms += performance.now() - t1;
    if (rep >= 0) times.push(ms); // rep -1 warms up
  }
  const vmAfter = vmCounters();
  lastVmDelta = Object.fromEntries(Object.keys(vmAfter).map((k) => [k, vmAfter[k] - (vmBefore[k] ?? 0)]));
  return times;
}

/** What the kernel counted during the last timeFresh call (page faults, compaction stalls), whole machine. */
let lastVmDelta: Record<string, number> = {};

interface ConfigResult {
  n: number;
  p: number;
  numpy: NumpyBaselines | { error: string };
  foldMs: number;
  noChecksumMs: number;
  /** The receive copy alone (frame -> the fold's staging area), per repetition. */
  copyMs: number;
  slotsMs: number;
  load: number[];
  /** /proc/vmstat deltas over the fold's repetitions (fresh frames written and folded), whole machine. */
  foldVm: Record<string, number>;
}

/** One pool per configuration: its shared memory never shrinks, and N = 100 slots of 10M floats alone fill 4 GB. */
async function runConfig(c: Config, log: (line: string) => void): Promise<ConfigResult> {
  const pool = await createAggregatorPool({ backend: 'wasm' });
  try {
    return await measureConfig(c, pool, log);
  } finally {
    await pool.close();
  }
}

async function measureConfig(c: Config, pool: AggregatorPool, log: (line: string) => void): Promise<ConfigResult> {
  log(`N = ${c.n}, P = ${c.p.toLocaleString('en-US')}: numpy (BLAS w @ X, np.average, acc += w*a)...`);
  const numpy = numpyBaselines(c.n, c.p, c.reps);
  log(`  numpy ${'error' in numpy ? `skipped: ${numpy.error}` : `w @ X ${fmtMs(numpy.blasMs)}, np.average ${fmtMs(numpy.averageMs)}, acc += w*a ${fmtMs(numpy.streamingMs)}`}`);
  const frames = sourceFrames(c);
  const weights = weightsFor(c.n);
  const limit = 1e6;

  // Fold on arrival: what the runner does for a mean-type rule.
  let sum = pool.openSum!(c.p);
  const foldTimes = await timeFresh(
    c,
    frames,
    () => {
      sum.close();
      sum = pool.openSum!(c.p);
    },
    (frame) => {
      const header = decodeHeader(frame);
      const stats = sum.fold(frame.subarray(64), header.sampleCount);
      checkStats(header, stats);
      if (!(Math.sqrt(stats.sumSquares) <= limit)) throw new Error('norm over the limit');
      sum.accept();
    },
    () => sum.mean(),
  );
  const foldVm = lastVmDelta;
  sum.close();

  // The same without the checksum lanes (the pass's bound): what a frame without a checksum would cost.
  sum = pool.openSum!(c.p);
  const noChecksumTimes = await timeFresh(
    { ...c, reps: Math.max(3, Math.ceil(c.reps / 2)) },
    frames,
    () => {
      sum.close();
      sum = pool.openSum!(c.p);
      (sum as WasmRunningSum).checksumOff();
    },
    (frame) => {
      const header = decodeHeader(frame);
      const stats = sum.fold(frame.subarray(64), header.sampleCount);
      if (stats.nonFinite > 0 || !(Math.sqrt(stats.sumSquares) <= limit)) throw new Error('refused');
      sum.accept();
    },
    () => sum.mean(),
  );
  sum.close();

  // The receive copy alone: each fresh frame copied into a 64 KiB staging area in the aggregator's shared
  // memory, a chunk at a time, exactly as the fold does before its kernel reads it (wasm reads only its own
  // memory). numpy's BLAS baseline starts from the updates already in one array and does none of this.
  const staging = new Uint8Array(new SharedArrayBuffer(FOLD_CHUNK_BYTES));
  const copyTimes = await timeFresh(
    { ...c, reps: Math.max(3, Math.ceil(c.reps / 2)) },
    frames,
    () => {},
    (frame) => {
      for (let at = 64; at < frame.byteLength; at += FOLD_CHUNK_BYTES) staging.set(frame.subarray(at, Math.min(at + FOLD_CHUNK_BYTES, frame.byteLength)));
    },
    () => {},
  );

  // Slots: decodeFrameInto + inspect per update, then pool.weightedMean (robust rules, and the path before).
  const slots = Array.from({ length: c.n }, () => pool.acquire(c.p));
  const slotTimes = await timeFresh(
    { ...c, reps: Math.max(3, Math.ceil(c.reps / 2)) },
    frames,
    () => {},
    (frame, j) => {
      const slot = slots[j];
      const { stats } = decodeFrameInto(frame, slot.view, () => pool.inspect(slot));
      if (!(Math.sqrt(stats.sumSquares) <= limit)) throw new Error('norm over the limit');
    },
    () => pool.weightedMean(slots, weights),
  );
  for (const slot of slots) pool.release(slot);
  const result = { n: c.n, p: c.p, numpy, foldMs: median(foldTimes), noChecksumMs: median(noChecksumTimes), copyMs: median(copyTimes), slotsMs: median(slotTimes), load: loadAverage(), foldVm };
  log(`  fold on arrival ${fmtMs(result.foldMs)} (${fmtMs(result.noChecksumMs)} without the checksum); slots + weightedMean ${fmtMs(result.slotsMs)} (load ${result.load.join(' / ')})`);
  return result;
}

interface CloseParts {
  /** The running sum's mean (one scaling pass), written where the step reads it (ModelStore.aggregateTarget). */
  meanMs: number;
  /**
   * The step: staged on an aggregator worker and copied into the next frame's buffer (the kernel store, which
   * the runner starts at aggregation and which runs beside the commit), or in place on the main thread (JS store).
   */
  stepMs: number;
  /** ModelStore.apply + modelFrame after the commit: a bank switch and the frame's header (kernel store). */
  publishMs: number;
}

/**
 * The compute of the round close through the product's own code, at P parameters after N folded updates: the
 * running sum's mean, the model store's step and the next model frame, with the store as runtime.ts builds it when
 * the aggregator runs its wasm SIMD backend (`staged`: the WebAssembly optimizer on the resident model, its step
 * staged on the pool's workers) and as the JS fallback builds it (core/optimizer.ts on the main thread). Adam.
 */
export async function roundCloseCompute(pool: AggregatorPool, p: number, n: number, reps: number, staged: boolean): Promise<CloseParts> {
  const source = new Float32Array(p);
  fillInput(source, 3);
  const bytes = new Uint8Array(source.buffer);
  const config: SessionConfig = { ...DEFAULT_SESSION_CONFIG, optimizer: DEFAULT_OPTIMIZER.adam };
  const kernels = staged ? createWasmOptimizerKernels((job) => pool.runOptimizerStep!(job)) : null;
  const store = new ModelStore({ paramCount: () => p, initialParams: () => new Float32Array(p).fill(0.01) }, kernels);
  store.init(1, config);
  const meanT: number[] = [];
  const stepT: number[] = [];
  const publishT: number[] = [];
  for (let rep = -1; rep < reps; rep++) {
    const sum = pool.openSum!(p);
    for (let j = 0; j < n; j++) {
      sum.fold(bytes, 128);
      sum.accept();
    }
    const round = rep + 2;
    const t0 = performance.now();
    const mean = sum.mean(store.aggregateTarget(1));
    const t1 = performance.now();
    store.holdAggregate(1, round, mean);
    store.prepareFrame(1); // at aggregation-done; its pages are touched off the path
    const t2 = performance.now();
    if (staged) await store.stage(1, round);
    else store.apply(1, round);
    const t3 = performance.now();
    if (staged) store.apply(1, round);
    store.modelFrame(1, round + 1, store.model!.modelVersion);
    const t4 = performance.now();
    sum.close();
    if (rep >= 0) {
      meanT.push(t1 - t0);
      stepT.push(t3 - t2);
      publishT.push(t4 - t3);
    }
  }
  return { meanMs: median(meanT), stepMs: median(stepT), publishMs: median(publishT) };
}

function closeRow(label: string, p: number, kernel: CloseParts, js: CloseParts, commit: CommitPath, target?: number): Row {
  // After the last update: the mean, then the commit's part (journal append beside a step staged on a worker, or
  // after one staged on the main thread; then the bank switch and the next frame), measured together by
  // commitPath: what the runner does, not a sum of parts.
  const critical = kernel.meanMs + commit.overlappedMs;
  const compute = kernel.meanMs + kernel.publishMs;
  return row(
    `round close, ${label}: last update -> mean -> commit beside the staged step -> next model frame`,
    `${fmtMs(critical)} (compute outside the commit ${fmtMs(compute)})`,
    critical,
    'ms',
    target === undefined ? '' : `<= ${target} ms (whole critical path)`,
    target === undefined ? undefined : below(critical, target, ' ms'),
    `mean into the step's buffer ${fmtMs(kernel.meanMs)} + the commit's part ${fmtMs(commit.overlappedMs)} (journal append alone ${fmtMs(commit.journalMs)}; Adam staged ${stepThread(p)} and copied into the frame, ${fmtMs(kernel.stepMs)} alone; bank switch and frame header, ${fmtMs(kernel.publishMs)} alone); ` +
      `the round's transaction comes on top. What remains is the journal's fdatasync, which the exactly-once order puts before anything is published. ` +
      `The JS fallback store (core/optimizer.ts on the main thread after the commit, frame checksum in JS): mean ${fmtMs(js.meanMs)}, step ${fmtMs(js.stepMs)}, frame ${fmtMs(js.publishMs)}; load ${loadAverage().join(' / ')}`,
  );
}

interface CommitPath {
  /** The journal append alone (write + fdatasync): what the exactly-once order must wait for before publishing. */
  journalMs: number;
  /** Journal append, then the step (main thread, in place), then the next model frame: the order before staging. */
  sequentialMs: number;
  /** The step staged on an aggregator worker (out of place) while the main thread writes the journal, then published. */
  overlappedMs: number;
}

/**
 * The commit's part of the round close at P parameters, through the product's own journal (files, on a temporary
 * folder under the OS temp dir: on this box the same disk as the data folder), model store and aggregator pool
 * (Adam): the round's aggregate is journaled, then the step and the next model frame follow, either after it on the
 * main thread (sequential: the order before) or staged on a worker as the runner does now (overlapped: the
 * step starts with the journal write; after both, apply only switches banks and the frame's body is already
 * copied). Medians of `reps` rounds, the orders alternating. The round's transaction comes on top of both.
 */
export async function commitPath(pool: AggregatorPool, p: number, reps: number): Promise<CommitPath> {
  const dir = trackedTempDir('hypergpu-journal-');
  try {
    const journal = createUpdateJournal(createFileBlobStore(dir));
    const config: SessionConfig = { ...DEFAULT_SESSION_CONFIG, optimizer: DEFAULT_OPTIMIZER.adam };
    const catalog = { paramCount: () => p, initialParams: () => new Float32Array(p).fill(0.01) };
    const inPlace = new ModelStore(catalog, createWasmOptimizerKernels());
    const staged = new ModelStore(catalog, createWasmOptimizerKernels((job) => pool.runOptimizerStep!(job)));
    inPlace.init(1, config);
    staged.init(1, config);
    const update = new Float32Array(p);
    fillInput(update, 5);
    const times: Record<keyof CommitPath, number[]> = { journalMs: [], sequentialMs: [], overlappedMs: [] };
    const modes = ['journalMs', 'sequentialMs', 'overlappedMs'] as const;
    let round = 0;
    let version = 0;
    for (let rep = -1; rep < reps; rep++) {
      for (const mode of modes) {
        round += 1;
        const store = mode === 'overlappedMs' ? staged : inPlace;
        const r = store.model!.modelVersion + 1;
        store.holdAggregate(1, r, update.slice());
        store.prepareFrame(1); // at aggregation-done, as the runner does
        const entry = { sessionId: 1, round, modelVersion: ++version, samples: 128, update: store.aggregateOf(1, r)! };
        const t0 = performance.now();
        if (mode === 'overlappedMs') {
          const step = store.stage(1, r);
          await journal.append(entry);
          await step;
        } else {
          await journal.append(entry);
        }
        const t1 = performance.now();
        if (mode === 'journalMs') {
          store.discard(r);
        } else {
          store.apply(1, r);
          store.modelFrame(1, r + 1, store.model!.modelVersion);
        }
        const t2 = performance.now();
        if (rep >= 0) times[mode].push(mode === 'journalMs' ? t1 - t0 : t2 - t0);
      }
    }
    return { journalMs: median(times.journalMs), sequentialMs: median(times.sequentialMs), overlappedMs: median(times.overlappedMs) };
  } finally {
    removeTempDir(dir);
  }
}

function commitRow(label: string, p: number, c: CommitPath): Row {
  const saved = c.sequentialMs - c.overlappedMs;
  const beyond = Math.max(0, c.overlappedMs - c.journalMs);
  // Only a step on a worker overlaps the journal write; a smaller model's step runs on the main thread before the
  // write starts, where staged and in sequence are the same work, so that row is analysis and has no verdict. (A
  // step deferred until the write was issued measured no faster: the append's hashing needs the main thread too.)
  const overlaps = p >= WORKER_STEP_MIN_PARAMS;
  return row(
    `commit's part of the round close, ${label}: journal append + Adam step + next model frame`,
    `${fmtMs(c.overlappedMs)} (${fmtMs(c.sequentialMs)} in sequence)`,
    c.overlappedMs,
    'ms',
    overlaps ? `< ${fmtMs(c.sequentialMs)} (in sequence), exactly-once order kept` : '',
    overlaps ? below(c.overlappedMs, c.sequentialMs, ' ms') : undefined,
    `the step staged ${stepThread(p)}${overlaps ? ' while the main thread writes the journal' : ', before the journal write starts'} (published only after the commit): ${fmtMs(saved)} off the round (${fmt((100 * saved) / c.sequentialMs, 0)}%); the journal append alone ${fmtMs(c.journalMs)}, so ${fmtMs(beyond)} of step and frame remain beyond it; the round's transaction comes on top of all three; load ${loadAverage().join(' / ')}`,
  );
}

function rowsFor(r: ConfigResult): Row[] {
  const label = `N=${r.n} P=${r.p / 1e6}M`;
  const gb = (ms: number) => fmt((r.n * r.p * 4) / (ms * 1e6), 1);
  const load = `load ${r.load.join(' / ')}`;
  const rows: Row[] = [
    row(`${label}: received frames -> mean, fold on arrival`, `${fmtMs(r.foldMs)}, ${gb(r.foldMs)} GB/s`, r.foldMs, 'ms', '', undefined, `slots + weightedMean (the path before, robust rules) ${fmtMs(r.slotsMs)}, ${gb(r.slotsMs)} GB/s; the fold without its checksum lanes ${fmtMs(r.noChecksumMs)}; of which the receive copy alone (socket buffer -> wasm memory, one thread) ${fmtMs(r.copyMs)}, ${gb(r.copyMs)} GB/s; during the fold's ${r.foldVm.pgfault === undefined ? '' : `repetitions the machine took ${r.foldVm.pgfault.toLocaleString('en-US')} page faults (${r.foldVm.pgmajfault} major) and ${r.foldVm.compact_stall} compaction stalls; `}${load}`),
  ];
  if ('error' in r.numpy) {
    rows.push({ metric: `${label}: vs numpy`, measured: 'skipped', value: null, unit: 'x', target: '>= 0.67x BLAS, >= 1.5x acc += w*a', verdict: 'skipped', note: r.numpy.error });
    return rows;
  }
  const np = r.numpy;
  const blas = np.blasMs / r.foldMs;
  const streaming = np.streamingMs / r.foldMs;
  rows.push(
    row(`${label}: vs numpy BLAS w @ X (${fmtMs(np.blasMs)}, ${gb(np.blasMs)} GB/s)`, `${fmt(blas, 2)}x`, blas, 'x', '>= 0.67x', atLeast(blas, 0.67, 'x'), `${describeBlas(np)}; np.average ${fmtMs(np.averageMs)}; slots path ${fmt(np.blasMs / r.slotsMs, 2)}x; without the checksum ${fmt(np.blasMs / r.noChecksumMs, 2)}x; ${load}`),
    row(`${label}: vs numpy acc += w*a (${fmtMs(np.streamingMs)}, ${gb(np.streamingMs)} GB/s)`, `${fmt(streaming, 2)}x`, streaming, 'x', '>= 1.5x', atLeast(streaming, 1.5, 'x'), `slots path ${fmt(np.streamingMs / r.slotsMs, 2)}x; ${load}`),
  );
  return rows;
}

export const ingest: Benchmark = {
  name: 'ingest',
  title: 'Ingest: the mean counted from received frames (fold on arrival, and slots) vs numpy BLAS w @ X and acc += w*a',
  inDefault: true,
  async run({ quick, log }: BenchOptions): Promise<BenchOutcome> {
    const configs: Config[] = quick
      ? [
          { n: 10, p: 1_000_000, reps: 5 },
          { n: 100, p: 1_000_000, reps: 3 },
        ]
      : [
          { n: 10, p: 1_000_000, reps: 11 },
          { n: 100, p: 1_000_000, reps: 5 },
          { n: 10, p: 10_000_000, reps: 5 },
          { n: 100, p: 10_000_000, reps: 3 },
        ];
    const results: ConfigResult[] = [];
    for (const c of configs) results.push(await runConfig(c, log));
    const close: Record<'p1M' | 'p10M', { kernel: CloseParts; js: CloseParts }> = {} as never;
    let commit: { p1M: CommitPath; p10M: CommitPath };
    const pool = await createAggregatorPool({ backend: 'wasm' });
    try {
      for (const [key, p, reps] of [['p1M', 1_000_000, quick ? 7 : 15], ['p10M', 10_000_000, quick ? 3 : 5]] as const) {
        log(`round close compute at P = ${p / 1e6}M, N = 100 (mean of the running sum, the model store's Adam step and model frame)...`);
        close[key] = { kernel: await roundCloseCompute(pool, p, 100, reps, true), js: await roundCloseCompute(pool, p, 100, reps, false) };
      }
      log('the commit at P = 1M and 10M: journal append (write + fdatasync), then step and frame, in sequence and staged beside it...');
      commit = { p1M: await commitPath(pool, 1_000_000, quick ? 3 : 9), p10M: await commitPath(pool, 10_000_000, quick ? 2 : 5) };
    } finally {
      await pool.close();
    }
    const touch = firstTouchGBps();
    const rows = results.flatMap(rowsFor);
    rows.push(
      row(
        'memory: writing pages never touched vs pages already mapped (256 MiB memset)',
        `${fmt(touch.fresh, 2)} vs ${fmt(touch.mapped, 2)} GB/s`,
        touch.fresh,
        'GB/s',
        '',
        undefined,
        `what every fresh buffer costs here before a byte of it is used (a VM: each new page is backed by the host on first touch); why the round close writes into mapped buffers (the mean into the step's gradient buffer, the model frame readied ahead, the journal's staging pair kept); load ${loadAverage().join(' / ')}`,
      ),
    );
    rows.push(closeRow('P=1M N=100', 1_000_000, close.p1M.kernel, close.p1M.js, commit!.p1M, 5), closeRow('P=10M N=100', 10_000_000, close.p10M.kernel, close.p10M.js, commit!.p10M));
    rows.push(commitRow('P=1M', 1_000_000, commit!.p1M), commitRow('P=10M', 10_000_000, commit!.p10M));
    return {
      rows,
      notes: [
        'Counted from received frames: header decode, the copy of each 64 KiB chunk from the socket buffer into wasm memory, the fused fold pass (checksum, NaN/Inf count, sum of squares, weighted add into the other of two running sums, and the random-sign sketch the outlier scores are estimated from), the norm check and the accept, for every update, then the mean (one scaling pass). numpy is given the updates already stacked in one float32 (N, P) array and does none of that.',
        'Why the BLAS ratio stays far from 0.67x on this box: its L3 cache is 480 MiB, so sgemv on both cores reads the stacked (N, P) array from cache at the rate in its row, while each received frame must first be copied out of the socket buffer into wasm memory (the receive copy alone is in the fold row: it takes several times BLAS\'s whole time) and then read by one thread. The fold runs on the coordinator\'s main thread as updates arrive, spread over the round; numpy\'s figure is a burst over data already in place.',
        'Fresh frames: each update of each repetition is a new ArrayBuffer written before the timed part (in batches of at most 1 GiB, all of a batch before any is folded), so a repetition never reads frames a previous one left in cache.',
        'numpy runs in its own python3 process with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset; the BLAS kernel (core type) and thread count are in each row (threadpoolctl, or the library itself through ctypes when threadpoolctl does not know numpy\'s scipy-openblas build). w @ X is sgemv over the stacked array; acc += w*a is np.add(acc, w[j] * xs[j], out=acc) over N separate arrays.',
        'Our fold runs on one thread (the coordinator\'s main thread, as updates arrive); BLAS uses every core.',
      ],
      details: { configs: results, roundClose: close, commit: commit! },
    };
  },
};
