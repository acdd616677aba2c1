// Heterogeneity and misbehaviour on one machine, for watching adaptation on a laptop (`npm start -- --profile
// mixed`, `--byzantine K`): an agent can pretend to be slower, farther away, on a thinner link, or dishonest.
// Nothing here runs unless a flag asks for it; an honest agent's path is unchanged.

export type ByzantineMode = 'scale' | 'sign-flip' | 'random' | 'blow-up';
export const BYZANTINE_MODES: readonly ByzantineMode[] = ['scale', 'sign-flip', 'random', 'blow-up'];

export interface Simulation {
  /** Fraction of its real speed the agent trains at (0.25: four times slower), by idling after each micro-batch. */
  speed?: number;
  /** Added to every update's send and every pong (ms): a distant link. */
  latencyMs?: number;
  /** The update frame is held back as long as this upload rate would take to carry it (bytes/s). */
  uploadBytesPerSecond?: number;
  /** Send a bad update instead of the honest one (see corruptUpdate). */
  byzantine?: ByzantineMode;
}

/** How much larger a Byzantine update is than the honest one it replaces (under the coordinator's clip at 10x the recent median). */
export const BYZANTINE_GAIN = 4;

/**
 * How much larger a blow-up update is: past the coordinator's clip (10x the median of recent norms) and mostly
 * under its refusal limit (100x), so the coordinator accepts it counted as 10x the median, and says so.
 */
export const BLOW_UP_GAIN = 30;

/**
 * Replaces the honest update in place by a bad one:
 * - scale: the honest direction, BYZANTINE_GAIN times as long (pushes the model too far along one node's view);
 * - sign-flip: the opposite direction, BYZANTINE_GAIN times as long (with 1 of 5, it cancels the honest mean);
 * - random: Gaussian noise as long as BYZANTINE_GAIN honest updates (no information, only harm);
 * - blow-up: the honest direction, BLOW_UP_GAIN times as long (what the coordinator's norm screen clips).
 * The first three stay under the coordinator's norm screen (it clips at 10x the recent median), so the screen alone
 * lets them in at full length.
 */
export function corruptUpdate(values: Float32Array, mode: ByzantineMode, random: () => number = Math.random): void {
  if (mode === 'scale' || mode === 'sign-flip' || mode === 'blow-up') {
    const k = mode === 'scale' ? BYZANTINE_GAIN : mode === 'blow-up' ? BLOW_UP_GAIN : -BYZANTINE_GAIN;
    for (let i = 0; i < values.length; i++) values[i] *= k;
    return;
  }
  let honest = 0;
  for (let i = 0; i < values.length; i++) honest += values[i] * values[i];
  let noise = 0;
  for (let i = 0; i < values.length; i++) {
    // Box-Muller: one standard normal per coordinate.
    const g = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
    values[i] = g;
    noise += g * g;
  }
  const scale = noise > 0 ? (BYZANTINE_GAIN * Math.sqrt(honest)) / Math.sqrt(noise) : 0;
  for (let i = 0; i < values.length; i++) values[i] *= scale;
}

/** Milliseconds to idle after `computeMs` of work so that the agent runs at `speed` of its real pace. */
export function slowdownMs(computeMs: number, speed: number | undefined): number {
  if (speed === undefined || !(speed > 0) || speed >= 1) return 0;
  return computeMs * (1 / speed - 1);
}

/** Milliseconds an update of `bytes` is held before it goes out: the latency plus its transfer at the simulated rate. */
export function sendDelayMs(bytes: number, sim: Simulation | undefined): number {
  if (!sim) return 0;
  const transfer = sim.uploadBytesPerSecond && sim.uploadBytesPerSecond > 0 ? (bytes * 1000) / sim.uploadBytesPerSecond : 0;
  return (sim.latencyMs ?? 0) + transfer;
}

export function describeSimulation(sim: Simulation | undefined): string | null {
  if (!sim) return null;
  const parts: string[] = [];
  if (sim.speed !== undefined && sim.speed < 1) parts.push(`${sim.speed}x speed`);
  if (sim.latencyMs) parts.push(`+${sim.latencyMs} ms latency`);
  if (sim.uploadBytesPerSecond) parts.push(`${(sim.uploadBytesPerSecond / 1e6).toFixed(2)} MB/s upload`);
  if (sim.byzantine) parts.push(`BYZANTINE (${sim.byzantine})`);
  return parts.length ? parts.join(', ') : null;
}
