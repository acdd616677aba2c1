// The body of the evaluation worker thread: loads tfjs, the model and the test set once, then answers
// 'evaluate' requests one at a time. src/workers/evaluator.worker.ts only wires this to parentPort.

import type { MessagePort } from 'node:worker_threads';

import { loadTf } from './backend';
import { forgetDataset, loadDataset, type TestSet } from './datasets';
import {
  EVALUATOR_PROTOCOL_VERSION,
  isEvaluatorRequest,
  type EvaluatorResponse,
  type EvaluatorWorkerData,
} from './evaluator-protocol';
import { assertDatasetFitsModel, isModelName, modelSpec } from './models';
import { lowerThreadPriority } from './thread-priority';
import { Trainer } from './trainer';

export async function runEvaluatorWorker(port: MessagePort, data: EvaluatorWorkerData): Promise<void> {
  const send = (message: EvaluatorResponse): void => port.postMessage(message);
  let trainer: Trainer;
  let testSet: TestSet;
  try {
    if (data?.v !== EVALUATOR_PROTOCOL_VERSION) {
      throw new Error(`evaluator worker speaks protocol v${EVALUATOR_PROTOCOL_VERSION}, parent sent v${String(data?.v)}`);
    }
    if (!isModelName(data.model)) throw new Error(`unknown model '${String(data.model)}'`);
    const spec = modelSpec(data.model);
    // Before tfjs loads, so the threads of its pool start at the same priority.
    if (data.niceness) send({ v: 1, type: 'log', line: `evaluator: ${lowerThreadPriority(data.niceness)}` });
    const [{ tf, info }, dataset] = await Promise.all([
      loadTf({ prefer: data.prefer, log: (line) => send({ v: 1, type: 'log', line: `evaluator: ${line}` }) }),
      loadDataset(data.dataset),
    ]);
    assertDatasetFitsModel(spec, dataset);
    testSet = dataset.testSet();
    // The evaluator needs only the test set: letting the cached dataset go frees the training images (47 MB
    // for MNIST) that it would otherwise hold for the session's life.
    forgetDataset(data.dataset);
    trainer = new Trainer(tf, spec);
    send({ v: 1, type: 'ready', backend: info, testSize: testSet.count, paramCount: spec.paramCount });
  } catch (error) {
    send({ v: 1, type: 'init-error', message: errorMessage(error) });
    port.close();
    return;
  }

  port.on('message', (message: unknown) => {
    if (!isEvaluatorRequest(message)) {
      const id = typeof (message as { id?: unknown })?.id === 'number' ? (message as { id: number }).id : -1;
      send({ v: 1, type: 'error', id, message: 'evaluator worker got a malformed or wrong-version request' });
      return;
    }
    const started = performance.now();
    try {
      const { loss, accuracy } = trainer.evaluate(message.params, testSet.x, testSet.labels, testSet.count);
      send({
        v: 1,
        type: 'result',
        id: message.id,
        loss,
        accuracy,
        samples: testSet.count,
        ms: performance.now() - started,
      });
    } catch (error) {
      send({ v: 1, type: 'error', id: message.id, message: errorMessage(error) });
    }
  });
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
