// Helpers for benchmarks that run a real training session: wait for it to warm up, measure its rate.
import { median, sleep, waitFor } from './common';
import { getJson, processCpuSeconds, type ServerHandle } from './procs';

export interface StatusSample {
  at: number;
  round: number;
  totalSamples: number;
}

export async function statusSample(server: ServerHandle): Promise<StatusSample> {
  const status = await getJson(`${server.baseUrl}/api/status`);
  return { at: Date.now(), round: status.round ?? 0, totalSamples: status.session?.totalSamples ?? 0 };
}

/** Waits until the running session has done `rounds` rounds and at least `minMs` have passed. */
export async function warmUp(server: ServerHandle, rounds: number, minMs: number, timeoutMs = 120_000): Promise<void> {
  const started = Date.now();
  await waitFor(() => statusSample(server), (s) => s.round >= rounds, timeoutMs, `round ${rounds}`, 200);
  const left = minMs - (Date.now() - started);
  if (left > 0) await sleep(left);
}

export interface RateMeasurement {
  /** Median of the per-window rates. */
  samplesPerSecond: number;
  windows: number[];
  roundsPerSecond: number;
  /** Server CPU use over the measurement, in cores (1.0 = one core busy). */
  serverCores: number;
  seconds: number;
  samples: StatusSample[];
}

/** Applied samples per second over `seconds`, in windows of `windowS` seconds (polled every 250 ms). */
export async function measureRate(server: ServerHandle, seconds: number, windowS: number): Promise<RateMeasurement> {
  const samples: StatusSample[] = [];
  const cpuStart = processCpuSeconds(server.pid);
  const started = Date.now();
  samples.push(await statusSample(server));
  while (Date.now() - started < seconds * 1000) {
    await sleep(250);
    samples.push(await statusSample(server));
  }
  const cpuEnd = processCpuSeconds(server.pid);
  const first = samples[0];
  const last = samples[samples.length - 1];
  const windows: number[] = [];
  let from = first;
  for (const s of samples) {
    if (s.at - from.at >= windowS * 1000) {
      windows.push(((s.totalSamples - from.totalSamples) * 1000) / (s.at - from.at));
      from = s;
    }
  }
  const elapsed = (last.at - first.at) / 1000;
  return {
    samplesPerSecond: windows.length ? median(windows) : (last.totalSamples - first.totalSamples) / elapsed,
    windows,
    roundsPerSecond: (last.round - first.round) / elapsed,
    serverCores: (cpuEnd - cpuStart) / elapsed,
    seconds: elapsed,
    samples,
  };
}

export interface RoundTiming {
  rounds: number;
  /** Median of the server's open-to-close duration (metric.roundDurationMs): model out, training, update in. */
  openToCloseMs: number;
  /** Median time between consecutive round closes. */
  cycleMs: number;
  /** cycle - open-to-close: closing one round (aggregate, journal, SQLite, optimizer) until the next opens. */
  betweenMs: number;
}

/** Round timing from the server's metric history for rounds in (fromRound, toRound]. */
export async function roundTiming(server: ServerHandle, fromRound: number, toRound: number): Promise<RoundTiming> {
  const history = ((await getJson(`${server.baseUrl}/api/metrics`)).history as Array<{ round: number; at: number; roundDurationMs: number }>)
    .filter((m) => m.round > fromRound && m.round <= toRound)
    .sort((a, b) => a.round - b.round);
  const cycles: number[] = [];
  const between: number[] = [];
  for (let i = 1; i < history.length; i++) {
    if (history[i].round !== history[i - 1].round + 1) continue;
    const cycle = history[i].at - history[i - 1].at;
    cycles.push(cycle);
    between.push(cycle - history[i].roundDurationMs);
  }
  return { rounds: history.length, openToCloseMs: median(history.map((m) => m.roundDurationMs)), cycleMs: median(cycles), betweenMs: median(between) };
}
