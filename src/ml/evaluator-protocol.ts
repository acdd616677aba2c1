// Messages between the coordinator and its evaluation worker thread. Versioned so a mismatch between a
// parent and a worker from different builds fails loudly instead of being misread.

import type { ModelName } from '../server/core/types';
import type { BackendInfo, BackendName } from './backend';

export const EVALUATOR_PROTOCOL_VERSION = 1;

/** Passed as the Worker's workerData. */
export interface EvaluatorWorkerData {
  v: 1;
  model: ModelName;
  dataset: string;
  /** Backend to start the search at (see loadTf). */
  prefer: BackendName;
  /** Nice value of this thread and the tfjs threads it starts (thread-priority.ts); 0 or absent: unchanged. */
  niceness?: number;
}

export type EvaluatorRequest = { v: 1; type: 'evaluate'; id: number; params: Float32Array };

export type EvaluatorResponse =
  | { v: 1; type: 'ready'; backend: BackendInfo; testSize: number; paramCount: number }
  | { v: 1; type: 'init-error'; message: string }
  | { v: 1; type: 'log'; line: string }
  | { v: 1; type: 'result'; id: number; loss: number; accuracy: number; samples: number; ms: number }
  | { v: 1; type: 'error'; id: number; message: string };

export function isEvaluatorResponse(value: unknown): value is EvaluatorResponse {
  if (typeof value !== 'object' || value === null) return false;
  const m = value as { v?: unknown; type?: unknown };
  return m.v === EVALUATOR_PROTOCOL_VERSION && typeof m.type === 'string';
}

export function isEvaluatorRequest(value: unknown): value is EvaluatorRequest {
  if (typeof value !== 'object' || value === null) return false;
  const m = value as { v?: unknown; type?: unknown; id?: unknown; params?: unknown };
  return (
    m.v === EVALUATOR_PROTOCOL_VERSION &&
    m.type === 'evaluate' &&
    typeof m.id === 'number' &&
    m.params instanceof Float32Array
  );
}
