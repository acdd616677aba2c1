// Shared pieces of the benchmark suite: result rows, statistics, machine facts.
// Nothing here is imported by src/ or tests/: benchmarks are never part of `npm test`.
import os from 'node:os';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));

export type Verdict = 'met' | 'MISSED' | 'info' | 'skipped' | 'error';

/** One line of the suite's table: a measured figure, the target it is held against, and the verdict. */
export interface Row {
  metric: string;
  /** Human text for the table ("3.1 ms, 12.9 GB/s"). */
  measured: string;
  /** The main number behind `measured`, for machines (null when there is none). */
  value: number | null;
  unit: string;
  target: string;
  verdict: Verdict;
  /** For a missed target: by how much ("over by 12.8 ms (2.3x the target)"). */
  miss?: string;
  /** What else a reader needs next to the figure (breakdowns, conditions). */
  note?: string;
}

export interface BenchOptions {
  quick: boolean;
  /** soak only: minutes to run (default 10). */
  minutes?: number;
  log: (line: string) => void;
}

export interface BenchOutcome {
  rows: Row[];
  /** Everything else worth keeping: raw samples, per-run figures, configuration. */
  details: Record<string, unknown>;
  /** Caveats a reader needs to interpret the rows. */
  notes: string[];
}

export interface Benchmark {
  name: string;
  title: string;
  /** Part of `npm run bench` with no names (the soak is not). */
  inDefault: boolean;
  run(options: BenchOptions): Promise<BenchOutcome>;
}

export interface BenchReport extends BenchOutcome {
  benchmark: string;
  title: string;
  quick: boolean;
  measuredAt: string;
  durationS: number;
  machine: MachineInfo;
  loadAverageAtStart: number[];
  loadAverageAtEnd: number[];
  error?: string;
}

export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  platform: string;
}

export function machineInfo(): MachineInfo {
  return {
    cpu: os.cpus()[0]?.model?.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
  };
}

export function loadAverage(): number[] {
  return os.loadavg().map((v) => Math.round(v * 100) / 100);
}

// ------------------------------------------------------------------ statistics

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Percentile by linear interpolation between closest ranks (p in [0, 100]). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 1) return sorted[0];
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
}

export function mean(values: readonly number[]): number {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : Number.NaN;
}

export interface Summary {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  min: number;
  mean: number;
}

export function summarize(values: readonly number[]): Summary {
  return {
    n: values.length,
    p50: percentile(values, 50),
    p95: percentile(values, 95),
    p99: percentile(values, 99),
    max: values.length ? Math.max(...values) : Number.NaN,
    min: values.length ? Math.min(...values) : Number.NaN,
    mean: mean(values),
  };
}

/** Two-sided 95% Student t quantile for `dof` degrees of freedom (table, then the normal value). */
export function t95(dof: number): number {
  const table = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086];
  if (dof < 1) return Number.POSITIVE_INFINITY;
  if (dof <= table.length) return table[dof - 1];
  if (dof <= 30) return 2.05;
  if (dof <= 60) return 2.01;
  return 1.98;
}

export interface Regression {
  slope: number;
  intercept: number;
  /** Standard error of the slope. */
  slopeSe: number;
  /** Residual standard deviation. */
  residualSd: number;
  ci95: [number, number];
  n: number;
}

/** Ordinary least squares y = a + b x, with the slope's 95% confidence interval. */
export function linearRegression(xs: readonly number[], ys: readonly number[]): Regression {
  const n = xs.length;
  const mx = mean(xs);
  const my = mean(ys);
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    sxx += (xs[i] - mx) ** 2;
    sxy += (xs[i] - mx) * (ys[i] - my);
  }
  const slope = sxx > 0 ? sxy / sxx : 0;
  const intercept = my - slope * mx;
  let sse = 0;
  for (let i = 0; i < n; i++) sse += (ys[i] - intercept - slope * xs[i]) ** 2;
  const residualSd = n > 2 ? Math.sqrt(sse / (n - 2)) : Number.NaN;
  const slopeSe = n > 2 && sxx > 0 ? residualSd / Math.sqrt(sxx) : Number.NaN;
  const half = t95(n - 2) * slopeSe;
  return { slope, intercept, slopeSe, residualSd, ci95: [slope - half, slope + half], n };
}

// ------------------------------------------------------------------ timing

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Epoch milliseconds with sub-millisecond resolution (same clock as Date.now()). */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Runs `fn` `warmup` times unrecorded, then `reps` times; returns each recorded duration in ms. */
export async function timeRuns(reps: number, warmup: number, fn: () => unknown): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const started = performance.now();
    await fn();
    times.push(performance.now() - started);
  }
  return times;
}

/** Polls until `accept` holds; throws with the last value after `timeoutMs`. */
export async function waitFor<T>(probe: () => Promise<T> | T, accept: (value: T) => boolean, timeoutMs: number, what: string, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastError: unknown = null;
  for (;;) {
    try {
      last = await probe();
      lastError = null;
      if (accept(last)) return last;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const detail = lastError ? `last error: ${lastError instanceof Error ? lastError.message : String(lastError)}` : `last value: ${JSON.stringify(last)?.slice(0, 300)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${detail}`);
    }
    await sleep(intervalMs);
  }
}

// ------------------------------------------------------------------ formatting and verdicts

export function fmt(value: number, digits = 1): string {
  if (!Number.isFinite(value)) return String(value);
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms < 1) return `${fmt(ms, 3)} ms`;
  if (ms < 10) return `${fmt(ms, 2)} ms`;
  if (ms < 1000) return `${fmt(ms, 1)} ms`;
  return `${fmt(ms / 1000, 2)} s`;
}

/** Verdict for "measured >= target" (higher is better); the note says how far off a miss is. */
export function atLeast(measured: number, target: number, unit = ''): { verdict: Verdict; note?: string } {
  if (!Number.isFinite(measured)) return { verdict: 'MISSED', note: 'no measurement' };
  if (measured >= target) return { verdict: 'met' };
  const short = target - measured;
  const share = unit.trim() === 'points' ? '' : ` (${fmt((measured / target) * 100, 0)}% of the target)`;
  return { verdict: 'MISSED', note: `short by ${fmt(short, 2)}${unit}${share}` };
}

/** Verdict for "measured < target" (lower is better). */
export function below(measured: number, target: number, unit = ''): { verdict: Verdict; note?: string } {
  if (!Number.isFinite(measured)) return { verdict: 'MISSED', note: 'no measurement' };
  if (measured < target) return { verdict: 'met' };
  return { verdict: 'MISSED', note: `over by ${fmt(measured - target, 2)}${unit} (${fmt(measured / target, 2)}x the target)` };
}

export function row(metric: string, measured: string, value: number | null, unit: string, target = '', check?: { verdict: Verdict; note?: string }, note?: string): Row {
  const verdict = check?.verdict ?? 'info';
  return { metric, measured, value, unit, target: target || '-', verdict, ...(check?.note ? { miss: check.note } : {}), ...(note ? { note } : {}) };
}
