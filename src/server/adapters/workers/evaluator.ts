// Evaluator port adapter: test-set evaluation in a worker_threads Worker, so the coordinator's event loop
// keeps serving sockets while tfjs computes. Starting, correlating, crash handling and restarts are the
// WorkerSupervisor's (worker-supervisor.ts); this file is the evaluator protocol and its policy.

import type { BackendInfo, BackendName } from '../../../ml/backend';
import {
  isEvaluatorResponse,
  type EvaluatorRequest,
  type EvaluatorWorkerData,
} from '../../../ml/evaluator-protocol';
import { modelSpec } from '../../../ml/models';
import type { Evaluator } from '../../core/ports';
import type { ModelName } from '../../core/types';
import { IGNORE, READY, TFJS_WORKER_LIMITS, WorkerSupervisor, type WorkerMemoryBoard, type WorkerMessage } from './supervisor';

export interface EvaluatorOptions {
  model: ModelName;
  /** What the worker loads: 'mnist' or 'folder:<absolute path>' (DatasetRegistry.source), inside this process only. */
  dataset: string;
  log?: (line: string) => void;
  /**
   * Fastest backend the worker may use. Default 'tensorflow' (native CPU, else wasm): on a GPU machine
   * the coordinator should not take GPU memory from an agent training there. HYPERGPU_BACKEND overrides.
   */
  backend?: BackendName;
  /** Nice value of the worker thread and its tfjs threads (src/ml/thread-priority.ts). Default 0: unchanged. */
  niceness?: number;
  /** Where the worker reports its own memory (for /metrics). */
  memoryBoard?: WorkerMemoryBoard;
  /** An evaluation that takes longer than this fails and the worker is replaced. Default 120 s. */
  timeoutMs?: number;
  /** Worker start-up limit (tfjs, wasm and the test set load). Default 120 s. */
  startTimeoutMs?: number;
  /**
   * Worker entry. Default: src/workers/evaluator.worker.ts next to this file's source, run through tsx. Tests
   * point this at stand-ins that misbehave; a bundled server at its compiled .js worker file.
   */
  workerUrl?: URL;
}

export interface EvaluatorHandle extends Evaluator {
  /** The backend the worker chose (known once createEvaluator resolves). */
  readonly backend: BackendInfo;
}

const DEFAULT_WORKER_URL = new URL('../../../workers/evaluator.worker.ts', import.meta.url);

type EvaluationResult = { loss: number; accuracy: number; samples: number };

/** Starts the worker and resolves once it has loaded tfjs, the model and the test set. */
export async function createEvaluator(opts: EvaluatorOptions): Promise<EvaluatorHandle> {
  const spec = modelSpec(opts.model);
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const log = opts.log ?? (() => {});
  let backend: BackendInfo | null = null;
  let closed = false;

  const interpret = (message: unknown): WorkerMessage<EvaluationResult> => {
    if (!isEvaluatorResponse(message)) {
      log('evaluator: ignored a message of an unknown protocol version');
      return IGNORE;
    }
    switch (message.type) {
      case 'log':
        log(message.line);
        return IGNORE;
      case 'ready':
        if (message.paramCount !== spec.paramCount) {
          return { type: 'fault', message: `worker's ${opts.model} has ${message.paramCount} params, this process's ${spec.paramCount}` };
        }
        backend = message.backend;
        return READY;
      case 'init-error':
        return { type: 'fault', message: message.message };
      case 'result':
        return { type: 'reply', id: message.id, value: { loss: message.loss, accuracy: message.accuracy, samples: message.samples } };
      case 'error':
        return { type: 'reply-error', id: message.id, message: `evaluation failed: ${message.message}` };
    }
  };

  const data: EvaluatorWorkerData = { v: 1, model: opts.model, dataset: opts.dataset, prefer: opts.backend ?? 'tensorflow', niceness: opts.niceness };
  // After a crash or a stuck evaluation the next call starts a fresh worker, so one bad evaluation does not end
  // evaluation for good; nothing restarts eagerly, since a worker costs seconds and 100+ MB to start.
  const worker = new WorkerSupervisor<EvaluatorRequest, EvaluationResult>({
    entry: opts.workerUrl ?? DEFAULT_WORKER_URL,
    name: 'evaluator worker',
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

    async evaluate(params, evalOpts) {
      if (closed) throw new Error('evaluator is closed');
      if (params.length !== spec.paramCount) {
        throw new Error(`evaluate: model ${opts.model} has ${spec.paramCount} params, got ${params.length}`);
      }
      // A buffer that moves to the worker: the caller's own when it hands it over (a whole, unshared buffer),
      // else a private copy, so the caller keeps its array intact.
      const whole = params.byteOffset === 0 && params.byteLength === params.buffer.byteLength && params.buffer instanceof ArrayBuffer;
      const copy = evalOpts?.transfer && whole ? params : params.slice();
      return worker.request((id) => ({ v: 1, type: 'evaluate', id, params: copy }), {
        transfer: [copy.buffer as ArrayBuffer],
        timeoutMs,
        what: 'evaluation',
      });
    },

    async close() {
      if (closed) return;
      closed = true;
      await worker.close(new Error('evaluator closed'));
    },
  };
}
