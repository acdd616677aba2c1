// Worker thread entry of the agent's training thread (started by training-thread.ts through the shared bootstrap
// in src/ml/worker-bootstrap.ts, which registers tsx's loader in this thread first when it runs as TypeScript).
import { parentPort, workerData } from 'node:worker_threads';

import type { TrainingThreadData } from './training-thread-protocol';
import { runTrainingWorker } from './training-worker-main';

if (!parentPort) throw new Error('training.worker.ts must run as a worker thread');
void runTrainingWorker(parentPort, workerData as TrainingThreadData);
