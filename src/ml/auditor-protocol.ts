// Messages between the coordinator and its auditor worker thread (the recomputation of an accepted update for
// an audit). Versioned like the evaluator's, so a parent and a worker from different builds fail loudly.

import type { ModelName } from '../server/core/types';
import type { BackendInfo, BackendName } from './backend';

export const AUDITOR_PROTOCOL_VERSION = 1;

export interface AuditorWorkerData {
  v: 1;
  model: ModelName;
  /** What the worker loads: 'mnist' or 'folder:<absolute path>' (DatasetRegistry.source). */
  dataset: string;
  prefer: BackendName;
  /** Nice value of this thread and the tfjs threads it starts (thread-priority.ts); 0 or absent: unchanged. */
  niceness?: number;
}

/** Recompute the update of one assignment: same parameters, same (seed, epoch) permutation slice. */
export interface RecomputeRequest {
  v: 1;
  type: 'recompute';
  id: number;
  params: Float32Array;
  seed: number;
  epoch: number;
  shardStart: number;
  shardCount: number;
}

export type AuditorResponse =
  | { v: 1; type: 'ready'; backend: BackendInfo; trainSize: number; paramCount: number }
  | { v: 1; type: 'init-error'; message: string }
  | { v: 1; type: 'log'; line: string }
  | { v: 1; type: 'result'; id: number; gradient: Float32Array; samples: number; ms: number }
  | { v: 1; type: 'error'; id: number; message: string };

export function isAuditorResponse(value: unknown): value is AuditorResponse {
  if (typeof value !== 'object' || value === null) return false;
  const m = value as { v?: unknown; type?: unknown };
  return m.v === AUDITOR_PROTOCOL_VERSION && typeof m.type === 'string';
}

export function isRecomputeRequest(value: unknown): value is RecomputeRequest {
  if (typeof value !== 'object' || value === null) return false;
  const m = value as Record<string, unknown>;
  return (
    m.v === AUDITOR_PROTOCOL_VERSION &&
    m.type === 'recompute' &&
    typeof m.id === 'number' &&
    m.params instanceof Float32Array &&
    [m.seed, m.epoch, m.shardStart, m.shardCount].every((n) => typeof n === 'number' && Number.isInteger(n) && n >= 0)
  );
}
