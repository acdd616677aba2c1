// Messages between the agent's main thread (link, heartbeats, watchdog) and its training thread (tfjs, the
// dataset, the rounds). Versioned like every other protocol here, so a mismatch fails loudly. Float arrays move
// by transfer (the model frame's buffer in, the update frame's buffer out), never by copy.
import type { BackendInfo, BackendName } from '../ml/backend';
import type { FrameHeader } from '../protocol/frame';
import type { Assignment, SessionDescriptor } from '../protocol/messages';
import type { Simulation } from './simulation';

export const TRAINING_THREAD_PROTOCOL_VERSION = 1;

/** The Worker's workerData. */
export interface TrainingThreadData {
  v: 1;
  /** Backend to start the search at (see loadTf); undefined: the fastest that loads. */
  prefer?: BackendName;
  /** Datasets configured on this machine: name -> absolute folder (this process only, never the network). */
  datasets: Array<[string, string]>;
  microBatch?: number;
  /** Simulated heterogeneity or misbehaviour (simulation.ts). */
  simulate?: Simulation;
}

export type ToTrainingThread =
  | { v: 1; type: 'calibrate'; dataset: string; model: 'mlp' | 'cnn' | 'mlp2nn' }
  | { v: 1; type: 'join'; session: SessionDescriptor | null }
  | { v: 1; type: 'model'; header: FrameHeader; values: Float32Array }
  | { v: 1; type: 'assign'; assignment: Assignment }
  | { v: 1; type: 'cancel'; round: number }
  | { v: 1; type: 'node'; nodeId: number | null }
  | { v: 1; type: 'stop' };

export type FromTrainingThread =
  | { v: 1; type: 'init'; backend: BackendInfo }
  | { v: 1; type: 'init-error'; message: string }
  | { v: 1; type: 'log'; line: string }
  | { v: 1; type: 'calibrated'; samplesPerSecond: number }
  | { v: 1; type: 'calibrate-error'; message: string }
  | { v: 1; type: 'ready'; sessionId: number }
  /** A sealed gradient frame, its buffer transferred. */
  | { v: 1; type: 'update'; round: number; bytes: Uint8Array }
  | { v: 1; type: 'active'; round: number | null; samplesPerSecond: number }
  | { v: 1; type: 'round'; durationMs: number; computeMs: number; samples: number; loss: number }
  | { v: 1; type: 'stopped' };

export function isFromTrainingThread(value: unknown): value is FromTrainingThread {
  if (typeof value !== 'object' || value === null) return false;
  const m = value as { v?: unknown; type?: unknown };
  return m.v === TRAINING_THREAD_PROTOCOL_VERSION && typeof m.type === 'string';
}

export function isToTrainingThread(value: unknown): value is ToTrainingThread {
  if (typeof value !== 'object' || value === null) return false;
  const m = value as { v?: unknown; type?: unknown };
  return m.v === TRAINING_THREAD_PROTOCOL_VERSION && typeof m.type === 'string';
}
