// Worker thread entry for audits: recomputes accepted updates (src/ml/auditor-worker-main.ts) off the
// coordinator's event loop, spawned by src/server/adapters/workers/auditor.ts through the WorkerSupervisor.

import { parentPort, workerData } from 'node:worker_threads';

import type { AuditorWorkerData } from '../ml/auditor-protocol';
import { runAuditorWorker } from '../ml/auditor-worker-main';

if (!parentPort) throw new Error('auditor.worker.ts must run as a worker thread');
void runAuditorWorker(parentPort, workerData as AuditorWorkerData);
