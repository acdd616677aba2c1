// Evaluator port adapter: test-set evaluation in a worker_threads Worker, so the coordinator's event loop
// keeps serving sockets while tfjs computes.
//
// The worker entry is TypeScript, so the worker starts from a few lines of JavaScript that register
// tsx's loader inside the worker first (see bootstrapSource). Works under tsx, vitest and plain node.

import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

import type { BackendInfo, BackendName } from '../../ml/backend';
import {
  isEvaluatorResponse,
  type EvaluatorRequest,
  type EvaluatorResponse,
  type EvaluatorWorkerData,
} from '../../ml/evaluator-protocol';
import { modelSpec } from '../../ml/models';
import type { Evaluator } from '../core/ports';
import type { ModelName } from '../core/types';

export interface EvaluatorOptions {
  model: ModelName;
  /** Dataset id: 'mnist' or 'folder:<path>'. */
  dataset: string;
  log?: (line: string) => void;
  /**
   * Fastest backend the worker may use. Default 'tensorflow' (native CPU, else wasm): on a GPU machine
   * the coordinator should not take GPU memory from an agent training there. HYPERGPU_BACKEND overrides.
   */
  backend?: BackendName;
  /** An evaluation that takes longer than this fails and the worker is replaced. Default 120 s. */
  timeoutMs?: number;
  /** Worker start-up limit (tfjs, wasm and the test set load). Default 120 s. */
  startTimeoutMs?: number;
  /** Worker script; tests point this at stand-ins that misbehave. */
  workerUrl?: URL;
}

export interface EvaluatorHandle extends Evaluator {
  /** The backend the worker chose (known once createEvaluator resolves). */
  readonly backend: BackendInfo;
}

interface Pending {
  resolve: (value: { loss: number; accuracy: number; samples: number }) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
  /** The worker the request went to: a late exit of a replaced worker must not fail its successor's work. */
  worker: Worker;
}

const DEFAULT_WORKER_URL = new URL('../../workers/evaluator.worker.ts', import.meta.url);

/**
 * Source of a tiny eval'd worker that registers tsx's ESM loader and then imports the real (TypeScript)
 * entry. Node 20 workers ignore loader hooks from the parent and from `--import` in execArgv (measured:
 * "Unknown file extension .ts" under tsx, vitest and plain node alike), so the worker registers them itself.
 */
function bootstrapSource(entry: URL): string {
  const tsxDir = path.dirname(createRequire(import.meta.url).resolve('tsx/package.json'));
  // The ESM build of tsx's API: its CommonJS build resolves its loader relative to the wrong folder.
  const api = pathToFileURL(path.join(tsxDir, 'dist', 'esm', 'api', 'index.mjs')).href;
  return (
    `import(${JSON.stringify(api)})` +
    `.then(({ register }) => { register(); return import(${JSON.stringify(entry.href)}); })` +
    // Rethrown outside the promise so it surfaces as the worker's 'error' event, not a silent rejection.
    `.catch((error) => { setImmediate(() => { throw error; }); });`
  );
}

/** Starts the worker and resolves once it has loaded tfjs, the model and the test set. */
export async function createEvaluator(opts: EvaluatorOptions): Promise<EvaluatorHandle> {
  const spec = modelSpec(opts.model);
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const startTimeoutMs = opts.startTimeoutMs ?? 120_000;
  const log = opts.log ?? (() => {});

  let worker: Worker | null = null;
  let starting: Promise<Worker> | null = null;
  let backend: BackendInfo | null = null;
  let closed = false;
  let nextId = 1;
  const pending = new Map<number, Pending>();
  /** Why the parent stopped a worker, so its exit is reported with the cause rather than an exit code. */
  const stopReasons = new WeakMap<Worker, string>();

  const failAll = (error: Error, only?: Worker): void => {
    for (const [id, p] of pending) {
      if (only && p.worker !== only) continue;
      clearTimeout(p.timer);
      pending.delete(id);
      p.reject(error);
    }
  };

  const start = (): Promise<Worker> =>
    new Promise<Worker>((resolve, reject) => {
      const data: EvaluatorWorkerData = {
        v: 1,
        model: opts.model,
        dataset: opts.dataset,
        prefer: opts.backend ?? 'tensorflow',
      };
      const w = new Worker(bootstrapSource(opts.workerUrl ?? DEFAULT_WORKER_URL), { eval: true, workerData: data });
      let ready = false;
      let exitReason: string | null = null;
      const startTimer = setTimeout(() => {
        exitReason = `did not start within ${startTimeoutMs} ms`;
        void w.terminate();
      }, startTimeoutMs);

      const dead = (reason: string): void => {
        if (worker === w) worker = null;
        clearTimeout(startTimer);
        if (!ready) {
          reject(new Error(`evaluator worker failed to start: ${reason}`));
        } else if (!closed) {
          log(`evaluator worker stopped: ${reason}`);
          failAll(new Error(`evaluator worker crashed: ${reason}`), w);
        }
      };

      w.on('message', (message: unknown) => {
        if (!isEvaluatorResponse(message)) {
          log('evaluator: ignored a message of an unknown protocol version');
          return;
        }
        handle(message);
      });
      w.on('error', (error) => {
        exitReason ??= error.message;
      });
      w.on('messageerror', (error) => {
        exitReason ??= `undecodable message (${error.message})`;
        void w.terminate();
      });
      w.on('exit', (code) => dead(stopReasons.get(w) ?? exitReason ?? `exited with code ${code}`));

      const handle = (message: EvaluatorResponse): void => {
        switch (message.type) {
          case 'log':
            log(message.line);
            return;
          case 'ready':
            if (message.paramCount !== spec.paramCount) {
              exitReason = `worker's ${opts.model} has ${message.paramCount} params, this process's ${spec.paramCount}`;
              void w.terminate();
              return;
            }
            ready = true;
            clearTimeout(startTimer);
            backend = message.backend;
            worker = w;
            resolve(w);
            return;
          case 'init-error':
            exitReason = message.message;
            void w.terminate();
            return;
          case 'result':
          case 'error': {
            const p = pending.get(message.id);
            if (!p) return; // timed out earlier
            pending.delete(message.id);
            clearTimeout(p.timer);
            if (message.type === 'result') {
              p.resolve({ loss: message.loss, accuracy: message.accuracy, samples: message.samples });
            } else {
              p.reject(new Error(`evaluation failed: ${message.message}`));
            }
            return;
          }
        }
      };
    });

  /** The live worker, restarting it after a crash so one bad evaluation does not end evaluation for good. */
  const ensureWorker = async (): Promise<Worker> => {
    if (worker) return worker;
    if (!starting) {
      starting = start().finally(() => {
        starting = null;
      });
    }
    return starting;
  };

  await ensureWorker();

  const evaluate = async (params: Float32Array): Promise<{ loss: number; accuracy: number; samples: number }> => {
    if (closed) throw new Error('evaluator is closed');
    if (params.length !== spec.paramCount) {
      throw new Error(`evaluate: model ${opts.model} has ${spec.paramCount} params, got ${params.length}`);
    }
    const w = await ensureWorker();
    if (closed) throw new Error('evaluator is closed');
    const id = nextId++;
    // A private copy whose buffer moves to the worker: the caller keeps its array intact.
    const copy = params.slice();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`evaluation timed out after ${timeoutMs} ms; restarting the evaluator worker`));
        // Whatever it is stuck on also blocks every later request; replace it.
        if (worker === w) worker = null;
        stopReasons.set(w, `an evaluation took longer than ${timeoutMs} ms`);
        void w.terminate();
      }, timeoutMs);
      pending.set(id, { resolve, reject, timer, worker: w });
      const request: EvaluatorRequest = { v: 1, type: 'evaluate', id, params: copy };
      w.postMessage(request, [copy.buffer]);
    });
  };

  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    failAll(new Error('evaluator closed'));
    const w = worker ?? (starting ? await starting.catch(() => null) : null);
    worker = null;
    if (w) await w.terminate();
  };

  return {
    get backend(): BackendInfo {
      return backend as BackendInfo;
    },
    evaluate,
    close,
  };
}
