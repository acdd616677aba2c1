// Adaptive sizing of a round from what the engine measured: the inputs to the strategy's choice of local steps,
// and each node's codec (core/adaptive.ts holds the policies themselves).
import type { CodecName } from '../../../protocol/codecs';
import { chooseCodec } from '../adaptive';
import type { SessionConfig } from '../types';
import type { EngineState } from './state';
import type { RoundMeasurements } from './strategy';

/**
 * What adaptive rounds are sized by: one inner step on the slowest node (from its calibrated compute speed, which
 * excludes the network), and the last round's time not spent computing (its duration minus the compute its
 * samples per node took on that node).
 */
export function roundMeasurements(state: EngineState, nodeIds: readonly number[], batchSize: number): RoundMeasurements {
  const slowest = slowestSpeed(state, nodeIds);
  if (slowest === null) return { msPerStep: null, commMsPerRound: null };
  const last = state.session?.recent.at(-1);
  const computeMs = last && last.nodes > 0 ? ((last.samples / last.nodes) / slowest) * 1000 : null;
  return {
    msPerStep: (batchSize / slowest) * 1000,
    commMsPerRound: last && computeMs !== null ? Math.max(0, last.roundDurationMs - computeMs) : null,
  };
}

function slowestSpeed(state: EngineState, nodeIds: readonly number[]): number | null {
  let slowest = Number.POSITIVE_INFINITY;
  for (const id of nodeIds) {
    const speed = state.pool.get(id)?.capabilities.samplesPerSecond ?? 0;
    if (speed > 0) slowest = Math.min(slowest, speed);
  }
  return Number.isFinite(slowest) ? slowest : null;
}

/** Each node's codec: the session's, or with 'auto' the policy's choice from the node's measured upload bandwidth. */
export function codecsFor(state: EngineState, nodeIds: readonly number[], config: SessionConfig, paramCount: number, samplesPerNode: number): Map<number, CodecName> | undefined {
  const setting = config.codec;
  if (!setting || setting === 'float32') return undefined;
  const codecs = new Map<number, CodecName>();
  for (const id of nodeIds) {
    if (setting !== 'auto') {
      codecs.set(id, setting);
      continue;
    }
    const node = state.pool.get(id);
    const speed = node?.capabilities.samplesPerSecond ?? 0;
    codecs.set(
      id,
      chooseCodec({
        uploadBytesPerSecond: node?.uploadBytesPerSecond ?? null,
        paramCount,
        roundComputeMs: speed > 0 ? (samplesPerNode / speed) * 1000 : 0,
        topKFraction: config.topKFraction,
      }),
    );
  }
  return codecs;
}

