// Worker thread entry for test-set evaluation (spawned by src/server/adapters/evaluator.ts through the
// WorkerSupervisor, whose bootstrap registers tsx's loader in this thread first when this file runs as TypeScript).
// Evaluation takes 0.1-0.5 s of CPU per call; running it here keeps the coordinator's event loop free.

import { parentPort, workerData } from 'node:worker_threads';

import type { EvaluatorWorkerData } from '../ml/evaluator-protocol';
import { runEvaluatorWorker } from '../ml/evaluator-worker-main';

if (!parentPort) throw new Error('evaluator.worker.ts must run as a worker thread');
void runEvaluatorWorker(parentPort, workerData as EvaluatorWorkerData);
