// Adaptive choices for rounds over slow, uneven links, as pure functions of what was measured: how many local
// steps a node takes before it synchronises (H), and which codec its updates travel in. No clocks, no I/O: the
// engine passes the measurements in, so each choice replays in a unit test.
import { CODEC_BY_NAME, payloadBytes, type CodecName } from '../../protocol/codecs';

/** Communication may take at most this share of a round by default (DiLoCo's point: compute dominates). */
export const DEFAULT_MAX_COMM_SHARE = 0.1;
/** Bounds on automatic H: at least one step; at most this many (a round must still end within its deadline). */
export const MAX_AUTO_LOCAL_STEPS = 256;
/** H before anything was measured: a few steps, so the first measurement already shows compute. */
export const INITIAL_AUTO_LOCAL_STEPS = 4;

export interface LocalStepsInput {
  /** Time one inner step takes on the slowest node of the round (ms), or null before it was measured. */
  msPerStep: number | null;
  /** Time a round spends on anything but computing (model out, update in, aggregation) (ms), or null. */
  commMsPerRound: number | null;
  maxCommShare?: number;
  maxSteps?: number;
}

/**
 * The smallest H for which communication is at most `maxCommShare` of the round: comm / (comm + H * step) <=
 * share, so H >= comm * (1 - share) / (share * step). Before both are measured: INITIAL_AUTO_LOCAL_STEPS.
 */
export function chooseLocalSteps(input: LocalStepsInput): number {
  const share = input.maxCommShare ?? DEFAULT_MAX_COMM_SHARE;
  const max = input.maxSteps ?? MAX_AUTO_LOCAL_STEPS;
  if (!(share > 0 && share < 1)) throw new RangeError(`maxCommShare must be in (0, 1), got ${share}`);
  const { msPerStep, commMsPerRound } = input;
  if (msPerStep === null || commMsPerRound === null || !Number.isFinite(msPerStep) || !Number.isFinite(commMsPerRound) || msPerStep <= 0) {
    return Math.min(max, INITIAL_AUTO_LOCAL_STEPS);
  }
  const h = Math.ceil((Math.max(0, commMsPerRound) * (1 - share)) / (share * msPerStep) - 1e-9);
  return Math.max(1, Math.min(max, h));
}

/** Codecs from lossless to smallest: the policy takes the first whose upload fits. */
export const CODEC_LADDER: readonly CodecName[] = ['float32', 'fp16', 'int8', 'top-k'];

export interface CodecInput {
  /** Measured upload bandwidth of the node (bytes/s), or null before it was measured. */
  uploadBytesPerSecond: number | null;
  paramCount: number;
  /** Compute time of the node's round (ms): the upload should take at most `maxCommShare` of it. */
  roundComputeMs: number;
  maxCommShare?: number;
  topKFraction?: number;
}

/**
 * The least lossy codec whose upload takes at most `maxCommShare` of the round's compute time at the node's
 * measured bandwidth; top-k when none does. Unmeasured bandwidth: float32 (lossless until we know better).
 */
export function chooseCodec(input: CodecInput): CodecName {
  const { uploadBytesPerSecond: bw, paramCount } = input;
  if (bw === null || !Number.isFinite(bw) || bw <= 0) return 'float32';
  const budgetMs = (input.maxCommShare ?? DEFAULT_MAX_COMM_SHARE) * Math.max(0, input.roundComputeMs);
  for (const name of CODEC_LADDER) {
    const ms = (payloadBytes(CODEC_BY_NAME[name], paramCount, { topKFraction: input.topKFraction }) / bw) * 1000;
    if (ms <= budgetMs) return name;
  }
  return 'top-k';
}
