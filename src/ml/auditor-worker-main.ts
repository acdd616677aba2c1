// The body of the auditor worker thread: loads tfjs, the model and the TRAINING set once, then recomputes
// updates one at a time (src/ml/recompute.ts). src/workers/auditor.worker.ts only wires this to parentPort.

import type { MessagePort } from 'node:worker_threads';

import { loadTf } from './backend';
import { loadDataset, type Dataset } from './datasets';
import { AUDITOR_PROTOCOL_VERSION, isRecomputeRequest, type AuditorResponse, type AuditorWorkerData } from './auditor-protocol';
import { assertDatasetFitsModel, isModelName, modelSpec } from './models';
import { recomputeUpdate, shardIndices } from './recompute';
import { lowerThreadPriority } from './thread-priority';
import { Trainer } from './trainer';

export async function runAuditorWorker(port: MessagePort, data: AuditorWorkerData): Promise<void> {
  const send = (message: AuditorResponse, transfer: ArrayBuffer[] = []): void => port.postMessage(message, transfer);
  let trainer: Trainer;
  let dataset: Dataset;
  let paramCount: number;
  try {
    if (data?.v !== AUDITOR_PROTOCOL_VERSION) throw new Error(`auditor worker speaks protocol v${AUDITOR_PROTOCOL_VERSION}, parent sent v${String(data?.v)}`);
    if (!isModelName(data.model)) throw new Error(`unknown model '${String(data.model)}'`);
    const spec = modelSpec(data.model);
    // Before tfjs loads, so the threads of its pool start at the same priority.
    if (data.niceness) send({ v: 1, type: 'log', line: `auditor: ${lowerThreadPriority(data.niceness)}` });
    const [{ tf, info }, loaded] = await Promise.all([
      loadTf({ prefer: data.prefer, log: (line) => send({ v: 1, type: 'log', line: `auditor: ${line}` }) }),
      // A recomputation reads one shard (a batch or a few): the training images stay on disk where they can.
      loadDataset(data.dataset, { trainImages: 'disk' }),
    ]);
    assertDatasetFitsModel(spec, loaded);
    dataset = loaded;
    paramCount = spec.paramCount;
    trainer = new Trainer(tf, spec);
    send({ v: 1, type: 'ready', backend: info, trainSize: dataset.trainSize, paramCount });
  } catch (error) {
    send({ v: 1, type: 'init-error', message: errorMessage(error) });
    port.close();
    return;
  }
  const cache = { key: '', perm: new Uint32Array(0) };
  port.on('message', (message: unknown) => {
    if (!isRecomputeRequest(message)) {
      const id = typeof (message as { id?: unknown })?.id === 'number' ? (message as { id: number }).id : -1;
      send({ v: 1, type: 'error', id, message: 'auditor worker got a malformed or wrong-version request' });
      return;
    }
    const started = performance.now();
    try {
      if (message.params.length !== paramCount) throw new Error(`parameters hold ${message.params.length} values, the model ${paramCount}`);
      const indices = shardIndices(message, dataset.trainSize, cache);
      const gradient = recomputeUpdate(trainer, dataset, message.params, indices, paramCount);
      send({ v: 1, type: 'result', id: message.id, gradient, samples: indices.length, ms: performance.now() - started }, [gradient.buffer as ArrayBuffer]);
    } catch (error) {
      send({ v: 1, type: 'error', id: message.id, message: errorMessage(error) });
    }
  });
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
