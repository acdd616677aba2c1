// Aggregator worker entry: wires parentPort to the handler. All logic lives in kernels/aggregator-protocol.ts.
// Started by src/server/adapters/workers/aggregator-pool.ts through the WorkerSupervisor, whose bootstrap registers tsx's
// loader in this thread first when this file runs as TypeScript.

import { parentPort } from 'node:worker_threads';
import { createAggregatorWorkerHandler } from './kernels/aggregator-protocol';

if (!parentPort) throw new Error('aggregator.worker.ts runs as a worker thread, not as a script');
const port = parentPort;
port.on('message', createAggregatorWorkerHandler((message) => port.postMessage(message)));
