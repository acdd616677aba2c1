// Auditor port adapter: recomputation of accepted updates in a worker_threads Worker (tfjs, the training set),
// so audits never hold the coordinator's event loop or a round. Supervision is the WorkerSupervisor's.

import type { BackendInfo, BackendName } from '../../../ml/backend';
import { isAuditorResponse, type AuditorWorkerData, type RecomputeRequest } from '../../../ml/auditor-protocol';
import { modelSpec } from '../../../ml/models';
import type { Auditor } from '../../core/audit-ports';
import type { ModelName } from '../../core/types';
import { IGNORE, READY, TFJS_WORKER_LIMITS, WorkerSupervisor, type WorkerMemoryBoard, type WorkerMessage } from './supervisor';

export interface AuditorOptions {
  model: ModelName;
  dataset: string;
  log?: (line: string) => void;
  /** Default 'tensorflow' (native CPU, else wasm): the agents' likeliest backends. HYPERGPU_BACKEND overrides. */
  backend?: BackendName;
  /** Nice value of the worker thread and its tfjs threads (src/ml/thread-priority.ts). Default 0: unchanged. */
  niceness?: number;
  /** Where the worker reports its own memory (for /metrics). */
  memoryBoard?: WorkerMemoryBoard;
  timeoutMs?: number;
  startTimeoutMs?: number;
  workerUrl?: URL;
}

export interface AuditorHandle extends Auditor {
  readonly backend: BackendInfo;
}

const DEFAULT_WORKER_URL = new URL('../../../workers/auditor.worker.ts', import.meta.url);

export async function createAuditor(opts: AuditorOptions): Promise<AuditorHandle> {
  const spec = modelSpec(opts.model);
  const log = opts.log ?? (() => {});
  let backend: BackendInfo | null = null;
  let closed = false;
  const interpret = (message: unknown): WorkerMessage<Float32Array> => {
    if (!isAuditorResponse(message)) return IGNORE;
    switch (message.type) {
      case 'log':
        log(message.line);
        return IGNORE;
      case 'ready':
        if (message.paramCount !== spec.paramCount) return { type: 'fault', message: `worker's ${opts.model} has ${message.paramCount} params, this process's ${spec.paramCount}` };
        backend = message.backend;
        return READY;
      case 'init-error':
        return { type: 'fault', message: message.message };
      case 'result':
        return { type: 'reply', id: message.id, value: message.gradient };
      case 'error':
        return { type: 'reply-error', id: message.id, message: `recomputation failed: ${message.message}` };
    }
  };
  const data: AuditorWorkerData = { v: 1, model: opts.model, dataset: opts.dataset, prefer: opts.backend ?? 'tensorflow', niceness: opts.niceness };
  const worker = new WorkerSupervisor<RecomputeRequest, Float32Array>({
    entry: opts.workerUrl ?? DEFAULT_WORKER_URL,
    name: 'auditor worker',
    workerData: data,
    interpret,
    startTimeoutMs: opts.startTimeoutMs ?? 120_000,
    restart: 'on-next-call',
    log,
    memoryBoard: opts.memoryBoard,
    resourceLimits: TFJS_WORKER_LIMITS,
  });
  try {
    await worker.start();
  } catch (error) {
    await worker.close();
    throw error;
  }
  return {
    get backend(): BackendInfo {
      return backend as BackendInfo;
    },
    async recompute(input) {
      if (closed) throw new Error('auditor is closed');
      if (input.params.length !== spec.paramCount) throw new Error(`recompute: model ${opts.model} has ${spec.paramCount} params, got ${input.params.length}`);
      const params = input.params.slice();
      return worker.request((id) => ({ v: 1, type: 'recompute', id, params, seed: input.seed, epoch: input.epoch, shardStart: input.shardStart, shardCount: input.shardCount }), {
        transfer: [params.buffer],
        timeoutMs: opts.timeoutMs ?? 120_000,
        what: 'audit recomputation',
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      await worker.close(new Error('auditor closed'));
    },
  };
}
