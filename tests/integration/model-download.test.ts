// The trained model leaves HyperGPU as TensorFlow.js layers files that tfjs loads over HTTP and that score what
// the session reported; a new session starts from a checkpoint's weights. Real server, real agents, real SQLite,
// the real MNIST test set.
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checksum32 } from '../../src/protocol/frame';
import { loadDataset } from '../../src/ml/datasets';
import { eventually, OPERATOR_HEADERS, startServer, waitForHttp, type ServerProcess } from '../support/server-process';

describe('model download and start from a checkpoint', () => {
  let server: ServerProcess;
  // Evaluating the test set keeps this process busy past the server's keep-alive timeout (5 s): the pooled socket
  // the server closed meanwhile fails the next request before it is sent ("other side closed"); one retry on a
  // fresh socket is what a browser does too.
  const call = async (url: string, init?: RequestInit): Promise<Response> => {
    try {
      return await fetch(url, init);
    } catch (error) {
      if ((error as { cause?: { code?: string } }).cause?.code !== 'UND_ERR_SOCKET') throw error;
      return fetch(url, init);
    }
  };
  const get = async (path: string) => {
    const res = await call(`${server.baseUrl}${path}`);
    return { status: res.status, body: (await res.json()) as any };
  };
  const post = async (path: string, body: unknown) => {
    const res = await call(`${server.baseUrl}${path}`, { method: 'POST', body: JSON.stringify(body), headers: { ...OPERATOR_HEADERS, 'content-type': 'application/json' } });
    return { status: res.status, body: (await res.json()) as any };
  };
  const ended = (id: number) => eventually(() => get(`/api/sessions/${id}`), (s) => s.body.state === 'completed', 240_000, `session ${id} completed`);

  beforeAll(async () => {
    tf.enableProdMode();
    await tf.setBackend('cpu');
    server = await startServer(['--no-dashboard', '--no-session', '--nodes', '2']);
    await waitForHttp(`${server.baseUrl}/health`);
  });

  afterAll(async () => {
    expect(await server?.stop('SIGTERM')).toBe(0);
  });

  let source: { id: number; round: number; accuracy: number; weights: Uint8Array };

  it('serves the final model as model.json + weights.bin that tf.loadLayersModel loads and that scores the reported accuracy', async () => {
    const started = await post('/api/training/start', { model: 'mlp', optimizer: 'sgd', learningRate: 0.05, batchSize: 64, rounds: 40, evalEvery: 5, checkpointEvery: 5 });
    expect(started.status).toBe(201);
    const id = started.body.id as number;
    const session = (await ended(id)).body;
    const checkpoints = (await get(`/api/sessions/${id}/checkpoints`)).body.checkpoints as { round: number }[];
    expect(checkpoints.length).toBeGreaterThan(0);
    const last = checkpoints.at(-1)!;
    expect(last.round).toBe(session.round); // the final checkpoint holds the final model

    const url = `${server.baseUrl}/api/sessions/${id}/model/model.json`;
    const modelJson = (await get(`/api/sessions/${id}/model/model.json`)).body;
    expect(modelJson).toMatchObject({ format: 'layers-model', userDefinedMetadata: { sessionId: id, round: last.round, model: 'mlp' } });
    const model = await tf.loadLayersModel(url); // the http handler fetches weights.bin next to model.json
    // The same checkpoint by its round.
    const weights = new Uint8Array(await (await call(`${server.baseUrl}/api/sessions/${id}/checkpoints/${last.round}/weights.bin`)).arrayBuffer());

    const test = (await loadDataset('mnist')).testSet();
    const x = tf.tensor4d(test.x, [test.count, 28, 28, 1]);
    const predicted = tf.argMax(model.predict(x, { batchSize: test.count }) as tf.Tensor, 1);
    const correct = tf.sum(tf.equal(predicted, tf.tensor1d(test.labels, 'int32'))).dataSync()[0];
    const accuracy = correct / test.count;
    tf.dispose([x, predicted]);
    model.dispose();

    console.info(`downloaded model: ${(accuracy * 100).toFixed(2)}% on ${test.count} test images; session reported ${(session.lastTestAccuracy * 100).toFixed(2)}%`);
    expect(session.lastTestAccuracy).toBeGreaterThan(0.5); // it learned, so the comparison means something
    expect(Math.abs(accuracy - session.lastTestAccuracy)).toBeLessThanOrEqual(0.005);
    expect(weights.byteLength).toBe(109_386 * 4);
    source = { id, round: last.round, accuracy, weights };

    // An unknown checkpoint and an unknown session are 404s; a bad round a 400.
    expect((await get(`/api/sessions/${id}/checkpoints/99999/model.json`)).status).toBe(404);
    expect((await get('/api/sessions/424242/model/model.json')).status).toBe(404);
    expect((await get(`/api/sessions/${id}/checkpoints/x/model.json`)).status).toBe(400);
  }, 300_000);

  it('starts a new session from a checkpoint: its weights, its session’s settings as defaults', async () => {
    expect(source).toBeDefined();
    const wrongModel = await post('/api/training/start', { model: 'cnn', fromCheckpoint: { sessionId: source.id, round: source.round } });
    expect(wrongModel).toMatchObject({ status: 400, body: { error: { message: expect.stringMatching(/trained model mlp/) } } });
    expect((await post('/api/training/start', { fromCheckpoint: { sessionId: source.id, round: 99999 } })).status).toBe(404);

    const started = await post('/api/training/start', { rounds: 10, fromCheckpoint: { sessionId: source.id, round: source.round } });
    expect(started.status).toBe(201);
    expect(started.body.config).toMatchObject({ model: 'mlp', batchSize: 64, maxRounds: 10, initFrom: { sessionId: source.id, round: source.round }, optimizer: { name: 'sgd', learningRate: 0.05 } });
    const id = started.body.id as number;
    // Before its first update the model is the checkpoint's, bit for bit (when we look in time: rounds are quick).
    const identity = (await get('/api/model')).body;
    if (identity.sessionId === id && identity.modelVersion === 0) {
      expect(identity.checksum).toBe(checksum32(new Uint32Array(source.weights.buffer, source.weights.byteOffset, source.weights.byteLength / 4)));
    }
    await ended(id);
    // Its first evaluation (round 5) is already as good as where the source ended: a model from the seed is not.
    const metrics = (await get(`/api/metrics?sessionId=${id}`)).body.history as { round: number; testAccuracy: number | null }[];
    const first = metrics.find((m) => m.testAccuracy !== null)!;
    expect(first.round).toBeLessThanOrEqual(5);
    expect(first.testAccuracy!).toBeGreaterThan(source.accuracy - 0.05);
  }, 300_000);
});
